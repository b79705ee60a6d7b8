import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Forwards everything to `target` (retrying on `alternate`), and records how attempts failed.
private struct ForwardRouter: ProxyRouter {
    var target: UpstreamTarget
    var alternate: UpstreamTarget?
    var connectTimeout: TimeAmount = .seconds(2)
    var responseTimeout: TimeAmount = .seconds(10)
    let failures = NIOLockedValueBox<[ProxyOutcome.Failure]>([])

    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult {
        .decided(.forward(plan(target, request)))
    }

    func retry(after failed: ForwardPlan, failure: ProxyOutcome.Failure, request: ProxyRequest) -> ForwardPlan? {
        guard let alternate, failed.target != alternate else { return nil }
        return plan(alternate, request)
    }

    private func plan(_ target: UpstreamTarget, _ request: ProxyRequest) -> ForwardPlan {
        var plan = ForwardPlan(target: target, head: request.head)
        plan.connectTimeout = connectTimeout
        plan.responseTimeout = responseTimeout
        plan.retryable = alternate != nil
        let failures = self.failures
        plan.onComplete = { outcome in
            if let failure = outcome.failure { failures.withLockedValue { $0.append(failure) } }
        }
        return plan
    }

    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount) {}
}

/// Runs a proxy front on one event loop with upstream pools configured by `configure`.
private func withProxy(
    router: any ProxyRouter, configure: (inout UpstreamPools.Configuration) -> Void,
    _ body: @escaping @Sendable (_ port: Int, _ pools: UpstreamPools) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var upstream = UpstreamPools.Configuration()
    configure(&upstream)
    let pools = UpstreamPools(group: group, configuration: upstream)
    let server = HTTPFrontServer(
        configuration: .init(host: "127.0.0.1", port: 0), router: router, pools: pools, group: group, logger: Logger(label: "test"))
    do {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await server.run() }
            defer { tasks.cancelAll() }
            let port = try await server.listeningAddress.port!
            try await body(port, pools)
        }
    } catch {
        pools.closeAll()
        try? await group.shutdownGracefully()
        throw error
    }
    pools.closeAll()
    try await group.shutdownGracefully()
}

/// `count` GETs of `url` at once (curl's parallel mode, one client connection each): their status codes.
private func parallelGets(_ url: String, count: Int, maxTime: Int = 10) async throws -> [String] {
    var arguments = ["-Z", "--parallel-max", String(count), "--parallel-immediate", "-w", "%{http_code}\n"]
    for _ in 0..<count { arguments += ["-o", "/dev/null", url] }
    let (_, output) = try await runCurl(arguments, timeout: .seconds(Int64(maxTime)))
    return output.split(separator: "\n").map(String.init)
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct UpstreamPoolTests {
    /// With a limit of 2 connections per target, 10 concurrent slow requests all succeed while the
    /// backend never sees more than 2 connections at once.
    @Test func limitCapsConnectionsPerTarget() async throws {
        let backend = try await TestHTTPBackend.start(name: "slow")
        backend.setDelay(.milliseconds(150))
        let router = ForwardRouter(target: .init(host: "127.0.0.1", port: backend.port), connectTimeout: .seconds(5))
        try await withProxy(router: router, configure: { $0.maxConnectionsPerTarget = 2 }) { port, pools in
            let codes = try await parallelGets("http://127.0.0.1:\(port)/x", count: 10)
            #expect(codes == Array(repeating: "200", count: 10), "\(codes)")
            #expect(backend.requestCount == 10)
            #expect(backend.connections.peakOpen <= 2)
            #expect(backend.connections.accepted <= 2)
            let statistics = await pools.statistics()
            #expect(statistics["127.0.0.1:\(backend.port)"]?.connections ?? 0 <= 2)
            #expect(statistics["127.0.0.1:\(backend.port)"]?.waiting == 0)
        }
        #expect(router.failures.withLockedValue { $0 }.isEmpty)
        await backend.stop()
    }

    /// A burst with more requests in flight than `maxIdlePerTarget` leaves its connections open and
    /// the next requests reuse them; those above `maxIdlePerTarget` are closed once unused for
    /// `surplusIdleTimeout` (closing them on release made such a load reconnect all the time).
    @Test func surplusIdleConnectionsOutlastABurstThenClose() async throws {
        let backend = try await TestHTTPBackend.start(name: "burst")
        backend.setDelay(.milliseconds(200))
        let router = ForwardRouter(target: .init(host: "127.0.0.1", port: backend.port))
        let id = "127.0.0.1:\(backend.port)"
        try await withProxy(
            router: router,
            configure: {
                $0.maxIdlePerTarget = 2; $0.surplusIdleTimeout = .seconds(2)
            }
        ) { port, pools in
            let codes = try await parallelGets("http://127.0.0.1:\(port)/burst", count: 8)
            #expect(codes == Array(repeating: "200", count: 8), "\(codes)")
            let opened = backend.connections.accepted
            #expect(opened > 2)
            #expect(await pools.statistics()[id]?.connections == opened)
            backend.setDelay(.zero)
            for _ in 0..<5 {
                let (_, output) = try await runCurl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/again"])
                #expect(output == "200")
            }
            #expect(backend.connections.accepted == opened)
            #expect(backend.connections.open == opened)
            try await waitUntil("surplus idle connections closed", timeout: .seconds(15)) {
                backend.connections.open == 2
            }
            #expect(await pools.statistics()[id]?.connections == 2)
            #expect(backend.connections.accepted == opened)
        }
        #expect(router.failures.withLockedValue { $0 }.isEmpty)
        await backend.stop()
    }

    /// When the target's connections are all taken by requests it never answers, a request that waits
    /// past its connect timeout gets 503 JSON naming the limit and the request id, reported as
    /// `.poolExhausted`; no further connection is opened.
    @Test func waiterPastConnectTimeoutGets503() async throws {
        try await withFakeTCPServer(.silent) { fake in
            let router = ForwardRouter(
                target: .init(host: fake.host, port: fake.port), connectTimeout: .milliseconds(300), responseTimeout: .seconds(20))
            try await withProxy(router: router, configure: { $0.maxConnectionsPerTarget = 2 }) { port, _ in
                let hanging = Task { try await parallelGets("http://127.0.0.1:\(port)/hang", count: 2, maxTime: 4) }
                try await waitUntil("both connections taken") { fake.acceptedConnections == 2 }
                let started = ContinuousClock.now
                let (_, output) = try await runCurl(["-i", "-H", "X-Request-ID: waiter-1", "http://127.0.0.1:\(port)/x"])
                #expect(ContinuousClock.now - started >= .milliseconds(250))
                #expect(output.contains("503"), "\(output)")
                #expect(output.contains("is at its connection limit"))
                #expect(output.contains("\"request_id\":\"waiter-1\""))
                #expect(fake.acceptedConnections == 2)
                _ = try? await hanging.value
            }
            #expect(router.failures.withLockedValue { $0 }.contains(.poolExhausted))
        }
    }

    /// h2c: concurrent requests share ONE TCP connection to the backend as streams; bodies stream both
    /// ways (fixed-length and chunked uploads echoed back); `:authority` carries the Host and no
    /// connection-specific header reaches the backend.
    @Test func h2cMultiplexesRequestsOnOneConnection() async throws {
        let backend = try await TestH2Backend.start(name: "h2")
        backend.setDelay(.milliseconds(100))
        let router = ForwardRouter(target: .init(host: "127.0.0.1", port: backend.port))
        try await withProxy(router: router, configure: { $0.upstreamProtocol = .h2c }) { port, pools in
            let codes = try await parallelGets("http://127.0.0.1:\(port)/x", count: 10)
            #expect(codes == Array(repeating: "200", count: 10), "\(codes)")
            #expect(backend.acceptedConnections == 1)
            #expect(backend.peakActiveStreams > 1)
            let statistics = await pools.statistics()["127.0.0.1:\(backend.port)"]
            #expect(statistics?.connections == 1)

            backend.setDelay(.zero)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("gc-h2-\(UUID().uuidString)")
            try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) }).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let echoed = FileManager.default.temporaryDirectory.appendingPathComponent("gc-h2-echo-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: echoed) }
            for extra in [[], ["-H", "Transfer-Encoding: chunked"]] {
                let (_, headers) = try await runCurl(
                    ["-D", "-", "-o", echoed.path, "--data-binary", "@" + file.path, "-H", "Content-Type: application/octet-stream"] + extra
                        + ["http://127.0.0.1:\(port)/upload"])
                #expect(headers.contains("200"), "\(headers)")
                #expect(headers.lowercased().contains("x-seen-connection-headers: none"), "\(headers)")
                #expect(headers.lowercased().contains("x-seen-host: 127.0.0.1:\(port)"), "\(headers)")
                #expect(try Data(contentsOf: echoed) == Data(contentsOf: file))
            }
            #expect(backend.acceptedConnections == 1)
        }
        await backend.kill()
    }

    /// h2c with a limit of 2: 10 concurrent requests all succeed with never more than 2 streams at once.
    @Test func h2cLimitCapsStreams() async throws {
        let backend = try await TestH2Backend.start(name: "h2")
        backend.setDelay(.milliseconds(100))
        let router = ForwardRouter(target: .init(host: "127.0.0.1", port: backend.port), connectTimeout: .seconds(5))
        try await withProxy(
            router: router,
            configure: {
                $0.upstreamProtocol = .h2c; $0.maxConnectionsPerTarget = 2
            }
        ) { port, _ in
            let codes = try await parallelGets("http://127.0.0.1:\(port)/x", count: 10)
            #expect(codes == Array(repeating: "200", count: 10), "\(codes)")
            #expect(backend.peakActiveStreams <= 2)
            #expect(backend.acceptedConnections == 1)
        }
        await backend.kill()
    }

    /// h2c: when the backend dies, the next request fails over to the alternate; when it is back on
    /// its port, a new HTTP/2 connection reaches it.
    @Test func h2cFailsOverAndReconnectsAfterBackendDies() async throws {
        let first = try await TestH2Backend.start(name: "first")
        let alternate = try await TestH2Backend.start(name: "alternate")
        let port = first.port
        let router = ForwardRouter(target: .init(host: "127.0.0.1", port: port), alternate: .init(host: "127.0.0.1", port: alternate.port))
        try await withProxy(router: router, configure: { $0.upstreamProtocol = .h2c }) { front, pools in
            let before = try await runCurl(["-i", "http://127.0.0.1:\(front)/a"])
            #expect(before.output.lowercased().contains("x-backend: first"))
            await first.kill()
            try await waitUntil("the dead connection left the pool") {
                await pools.statistics()["127.0.0.1:\(port)"]?.connections == 0
            }
            for _ in 0..<3 {
                let after = try await runCurl(["-i", "http://127.0.0.1:\(front)/b"])
                #expect(after.output.lowercased().contains("x-backend: alternate"), "\(after.output)")
            }
            let revived = try await TestH2Backend.start(name: "revived", port: port)
            let again = try await runCurl(["-i", "http://127.0.0.1:\(front)/c"])
            #expect(again.output.lowercased().contains("x-backend: revived"), "\(again.output)")
            #expect(revived.acceptedConnections == 1)
            await revived.kill()
        }
        #expect(first.acceptedConnections == 1)
        await alternate.kill()
    }
}

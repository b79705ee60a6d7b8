import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// What the balancer relies on from the shared front: every forwarded attempt is reported to
/// `onComplete` exactly once (the router counts requests in flight per node with it).
@Suite(.timeLimit(.minutes(1))) struct FrontReportContractTests {
    /// Forwards everything to one backend and records each report.
    final class RecordingRouter: ProxyRouter {
        let port: Int
        let reports = Mutex<[ProxyOutcome.Failure?]>([])
        let completions = Mutex(0)

        init(port: Int) { self.port = port }

        func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult {
            var plan = ForwardPlan(target: UpstreamTarget(id: "backend", host: "127.0.0.1", port: port), head: request.head)
            plan.onComplete = { [self] outcome in self.reports.withLock { $0.append(outcome.failure) } }
            return .decided(.forward(plan))
        }

        func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount) {
            completions.withLock { $0 += 1 }
        }
    }

    func withFront(port: Int, limits: ProxyLimits = ProxyLimits(), _ body: (RecordingRouter, Int) async throws -> Void) async throws {
        let router = RecordingRouter(port: port)
        let pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton)
        let front = HTTPFrontServer(
            configuration: .init(host: "127.0.0.1", port: 0, limits: limits), router: router, pools: pools, logger: .forTesting())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await front.run() }
            let frontPort = try await front.listeningAddress.port!
            try await body(router, frontPort)
            group.cancelAll()
        }
        pools.closeAll()
    }

    /// A backend that hangs up in the middle of its response: one report (upstream closed), not two.
    @Test func upstreamClosingMidResponseIsReportedOnce() async throws {
        let partial = Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial".utf8)
        try await withFakeTCPServer(.reply(partial, thenClose: true)) { fake in
            try await withFront(port: fake.port) { router, port in
                _ = try? await AdminHTTPClient(timeout: .seconds(2)).request(.GET, "http://127.0.0.1:\(port)/x")
                try await waitUntil("the request completed") { router.completions.withLock { $0 } == 1 }
                try await Task.sleep(for: .milliseconds(50))  // a second report would come right after
                #expect(router.reports.withLock { $0 } == [.upstreamClosed])
            }
        }
    }

    /// A body that grows past the limit while its request is being forwarded: the attempt is reported.
    @Test func oversizedBodyWhileForwardingIsReported() async throws {
        try await withFakeTCPServer(.silent) { fake in
            var limits = ProxyLimits()
            limits.maxBodyBytes = 1024
            try await withFront(port: fake.port, limits: limits) { router, port in
                var request = "PUT /x HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\n"
                for _ in 0..<8 { request += "200\r\n" + String(repeating: "x", count: 512) + "\r\n" }
                let answer = try await RawTCP.exchange(port: port, request: Array(request.utf8), timeout: .seconds(5)) {
                    String(decoding: $0, as: UTF8.self).contains("request_id")
                }
                #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 413"))
                try await waitUntil("the request completed") { router.completions.withLock { $0 } == 1 }
                #expect(router.reports.withLock { $0 }.count == 1)
            }
        }
    }
}

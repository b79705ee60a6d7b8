import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Forwards everything to one backend, or answers locally for `/local`.
private struct StaticRouter: ProxyRouter {
    var target: UpstreamTarget
    var alternate: UpstreamTarget?

    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult {
        if request.head.uri == "/local" {
            // Answered through a future, as routers that need I/O do.
            return .pending(eventLoop.makeSucceededFuture(.respond(.error(.tooManyRequests, "slow down", requestID: request.requestID))))
        }
        var plan = ForwardPlan(target: target, head: request.head)
        plan.retryable = alternate != nil
        plan.responseTimeout = .seconds(2)
        plan.responseHeaders.add(name: "X-Proxied", value: "yes")
        return .decided(.forward(plan))
    }

    func retry(after failed: ForwardPlan, failure: ProxyOutcome.Failure, request: ProxyRequest) -> ForwardPlan? {
        guard let alternate, failed.target != alternate else { return nil }
        var plan = failed
        plan.target = alternate
        return plan
    }

    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount) {}
}

private func withFront(
    router: any ProxyRouter, limits: ProxyLimits = ProxyLimits(),
    _ body: @escaping @Sendable (Int) async throws -> Void
) async throws {
    let pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton)
    var configuration = HTTPFrontServer.Configuration(host: "127.0.0.1", port: 0, limits: limits)
    configuration.scheme = "http"
    let server = HTTPFrontServer(configuration: configuration, router: router, pools: pools, logger: Logger(label: "test"))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningAddress.port!
        defer { group.cancelAll() }
        try await body(port)
    }
    pools.closeAll()
}

@Suite struct HTTPFrontServerTests {
    /// A GET goes through to the backend with X-Forwarded-* and X-Request-ID set, and the answer comes back.
    @Test func forwardsRequestsWithForwardingHeaders() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port))) { port in
            let (status, out) = try await runCurl([
                "-i", "-H", "X-Request-ID: abc123", "-H", "Connection: keep-alive, X-Secret", "-H", "X-Secret: 1",
                "http://127.0.0.1:\(port)/hello?x=1",
            ])
            #expect(status == 0)
            #expect(out.contains("200 OK"))
            #expect(out.contains("\"backend\":\"b1\""))
            #expect(out.contains("\"uri\":\"/hello?x=1\""))
            #expect(out.contains("\"x-forwarded-for\":\"127.0.0.1\""))
            #expect(out.contains("\"x-forwarded-proto\":\"http\""))
            #expect(out.contains("\"x-request-id\":\"abc123\""))
            #expect(!out.contains("x-secret"))  // named by Connection: hop-by-hop
            #expect(out.lowercased().contains("x-proxied: yes"))
            #expect(out.lowercased().contains("x-request-id: abc123"))
        }
        await backend.stop()
    }

    /// A backend's response fields reach the client as the backend wrote them (a bare-LF line end made
    /// CRLF, a value's spacing kept), without its hop-by-hop fields, the field its Connection names, or
    /// its X-Request-ID (the proxy's own replaces it); over HTTP/2 the same fields, lower-cased and trimmed.
    @Test func backendFieldsRelayedWithoutHopByHopOnes() async throws {
        let response =
            "HTTP/1.1 200 OK\nContent-Length: 2\nConnection: keep-alive, X-Hop\nX-Hop: secret\nKeep-Alive: timeout=5\n"
            + "X-Request-ID: from-backend\nX-Custom:  kept value\r\nProxy-Authenticate: Basic\nCache-Control: no-store\n\nok"
        try await withFakeTCPServer(.reply(Array(response.utf8))) { fake in
            try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: fake.port))) { port in
                let (status, out) = try await runCurl(["-i", "-H", "X-Request-ID: rid-1", "http://127.0.0.1:\(port)/x"])
                #expect(status == 0, "\(out)")
                let head = out.components(separatedBy: "\r\n\r\n").first ?? ""
                let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
                #expect(lines.first == "HTTP/1.1 200 OK", "\(out)")
                #expect(lines.allSatisfy { !$0.contains("\n") }, "every line ends in CRLF: \(out)")
                #expect(lines.contains("X-Custom:  kept value") && lines.contains("Cache-Control: no-store") && lines.contains("Content-Length: 2"))
                #expect(lines.contains("X-Request-ID: rid-1") && lines.contains("X-Proxied: yes"), "\(out)")
                for gone in ["x-hop", "keep-alive", "proxy-authenticate", "from-backend", "connection"] {
                    #expect(!head.lowercased().contains(gone), "\(gone) relayed: \(out)")
                }
                #expect(out.hasSuffix("\r\n\r\nok"))

                let (h2Status, h2) = try await runCurl(["-i", "--http2-prior-knowledge", "-H", "X-Request-ID: rid-2", "http://127.0.0.1:\(port)/x"])
                #expect(h2Status == 0 && h2.hasPrefix("HTTP/2 200"), "\(h2)")
                #expect(
                    h2.contains("x-custom: kept value\r\n") && h2.contains("cache-control: no-store\r\n") && h2.contains("x-request-id: rid-2\r\n"),
                    "\(h2)")
                for gone in ["x-hop", "keep-alive", "proxy-authenticate", "from-backend", "connection"] {
                    #expect(!h2.lowercased().contains(gone), "\(gone) relayed over HTTP/2: \(h2)")
                }
            }
        }
    }

    /// Many requests over keep-alive reuse upstream connections and all succeed; POST bodies arrive whole.
    @Test func keepAliveAndBodies() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port))) { port in
            let urls = (0..<20).flatMap { _ in ["-o", "/dev/null", "http://127.0.0.1:\(port)/k"] }
            let (status, out) = try await runCurl(["-w", "%{http_code} %{num_connects}\n"] + urls)
            #expect(status == 0)
            let lines = out.split(separator: "\n")
            #expect(lines.filter { $0.hasPrefix("200 ") }.count == 20)
            // curl reuses its one client connection for all 20.
            #expect(lines.filter { $0 == "200 1" }.count == 1)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("gc-body-\(UUID().uuidString)")
            try Data(repeating: UInt8(ascii: "a"), count: 200_000).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let post = try await runCurl(["--data-binary", "@" + file.path, "-H", "Content-Type: text/plain", "http://127.0.0.1:\(port)/upload"])
            #expect(post.output.contains("\"body_bytes\":200000"))
            let chunked = try await runCurl(["--data-binary", "@" + file.path, "-H", "Transfer-Encoding: chunked", "http://127.0.0.1:\(port)/upload"])
            #expect(chunked.output.contains("\"body_bytes\":200000"))
        }
        #expect(backend.requestCount == 22)
        await backend.stop()
    }

    /// A local answer is JSON with the request id; an oversized body gets 413, oversized headers 431.
    @Test func localAnswersAndLimits() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        var limits = ProxyLimits()
        limits.maxBodyBytes = 1000
        limits.maxHeaderBytes = 2000
        try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port)), limits: limits) { port in
            let local = try await runCurl(["-i", "http://127.0.0.1:\(port)/local"])
            #expect(local.output.contains("429"))
            #expect(local.output.contains("\"error\":\"slow down\""))
            #expect(local.output.contains("\"request_id\":"))
            let big = try await runCurl(["-i", "--data-binary", String(repeating: "b", count: 5000), "http://127.0.0.1:\(port)/x"])
            #expect(big.output.contains("413"))
            let header = try await runCurl(["-i", "-H", "X-Big: " + String(repeating: "h", count: 4000), "http://127.0.0.1:\(port)/x"])
            #expect(header.output.contains("431"))
        }
        #expect(backend.requestCount == 0)
        await backend.stop()
    }

    /// A backend that refuses connections gives 502 JSON; with an alternate, an idempotent request is retried there.
    @Test func backendFailuresGive502OrRetry() async throws {
        let alive = try await TestHTTPBackend.start(name: "alive")
        let deadPort = try await TestHTTPBackend.start(name: "dead")
        let dead = UpstreamTarget(host: "127.0.0.1", port: deadPort.port)
        await deadPort.stop()
        try await withFront(router: StaticRouter(target: dead)) { port in
            let r = try await runCurl(["-i", "http://127.0.0.1:\(port)/x"])
            #expect(r.output.contains("502"))
            #expect(r.output.contains("\"request_id\":"))
        }
        try await withFront(router: StaticRouter(target: dead, alternate: .init(host: "127.0.0.1", port: alive.port))) { port in
            let r = try await runCurl(["-i", "http://127.0.0.1:\(port)/x"])
            #expect(r.output.contains("200 OK"))
            #expect(r.output.contains("\"backend\":\"alive\""))
        }
        await alive.stop()
    }

    /// A backend slower than the response timeout gives 504.
    @Test func slowBackendGives504() async throws {
        let backend = try await TestHTTPBackend.start(name: "slow")
        backend.setDelay(.seconds(4))
        try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port))) { port in
            let r = try await runCurl(["-i", "http://127.0.0.1:\(port)/x"])
            #expect(r.output.contains("504"))
        }
        await backend.stop()
    }

    /// HTTP/2 with prior knowledge (h2c) is served on the same port.
    @Test func servesH2CWithPriorKnowledge() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port))) { port in
            let r = try await runCurl(["-i", "--http2-prior-knowledge", "http://127.0.0.1:\(port)/h2"])
            #expect(r.output.contains("HTTP/2 200"))
            #expect(r.output.contains("\"uri\":\"/h2\""))
        }
        await backend.stop()
    }

    /// Malformed HTTP gets a JSON 400 and a closed connection; the server keeps serving others.
    @Test func malformedRequestGets400() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port))) { port in
            let bytes = try await RawTCP.exchange(port: port, request: Array("GARBAGE\r\n\r\n".utf8), timeout: .seconds(3)) { _ in false }
            let reply = String(decoding: bytes, as: UTF8.self)
            #expect(reply.contains("400"))
            #expect(reply.contains("\"request_id\""))
            let ok = try await runCurl(["-i", "http://127.0.0.1:\(port)/x"])
            #expect(ok.output.contains("200 OK"))
        }
        await backend.stop()
    }
}

extension HTTPFrontServerTests {
    /// Requests pipelined on one connection (a POST with a body among them) are answered in order, and
    /// a malformed request behind them gets its 400 only after the answers before it, then the close.
    @Test func pipelinedRequestsAndAParseErrorBehindThemAreAnsweredInOrder() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        try await withFront(router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port))) { port in
            let requests =
                "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /two HTTP/1.1\r\nHost: a\r\n\r\n"
                + "GET /three HTTP/1.1\r\nHost: a\r\n\r\n"
                + "NOT HTTP AT ALL\r\n\r\n"
            let bytes = try await RawTCP.exchange(port: port, request: Array(requests.utf8), timeout: .seconds(5)) { _ in false }
            let reply = String(decoding: bytes, as: UTF8.self)
            // Bodies carry no line end, so a status line may follow one directly.
            let statuses = reply.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "200", "200", "400"], "\(reply)")
            let one = reply.range(of: "\"uri\":\"/one\"")
            let two = reply.range(of: "\"uri\":\"/two\"")
            let three = reply.range(of: "\"uri\":\"/three\"")
            #expect(one != nil && two != nil && three != nil)
            if let one, let two, let three { #expect(one.lowerBound < two.lowerBound && two.lowerBound < three.lowerBound) }
            #expect(reply.contains("\"request_id\""))
        }
        await backend.stop()
    }
}

extension HTTPFrontServerTests {
    /// Three requests multiplexed on one h2c connection to a slow backend are three open streams while
    /// they wait, and none once they are answered.
    @Test func countsOpenHTTP2Streams() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        backend.setDelay(.milliseconds(1500))
        let pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton)
        let server = HTTPFrontServer(
            configuration: .init(host: "127.0.0.1", port: 0), router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port)),
            pools: pools, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningAddress.port!
            defer { group.cancelAll() }
            #expect(server.activeStreamCount == 0)
            let url = "http://127.0.0.1:\(port)"
            // h2load: one connection, three concurrent streams.
            async let load = runTool("/usr/bin/h2load", ["-n", "3", "-c", "1", "-m", "3", "\(url)/a"])
            var seen: [Int] = []
            try await waitUntil("three open streams (seen \(seen))", timeout: .seconds(5)) {
                let n = server.activeStreamCount
                if seen.last != n { seen.append(n) }
                return n == 3
            }
            #expect(server.connectionCount == 1)
            let result = try await load
            #expect(result.status == 0)
            #expect(result.output.contains("3 succeeded, 0 failed, 0 errored"), "\(result.output)")
            try await waitUntil("streams closed", timeout: .seconds(5)) { server.activeStreamCount == 0 }
        }
        pools.closeAll()
        await backend.stop()
    }
}

/// A self-signed certificate and key for `localhost` in a temporary directory.
func makeSelfSignedCertificate() throws -> (cert: String, key: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gc-tls-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
    ]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    return (dir + "/cert.pem", dir + "/key.pem")
}

@Suite struct HTTPFrontServerTLSTests {
    /// Over TLS, ALPN picks HTTP/2 for curl --http2 and HTTP/1.1 for curl --http1.1; both reach the backend.
    @Test func tlsWithALPNServesHTTP2AndHTTP1() async throws {
        let backend = try await TestHTTPBackend.start(name: "b1")
        let (cert, key) = try makeSelfSignedCertificate()
        let pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton)
        var configuration = HTTPFrontServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.tls = try TLSContextBox(certificatePath: cert, keyPath: key)
        let server = HTTPFrontServer(
            configuration: configuration, router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port)),
            pools: pools, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningAddress.port!
            let h2 = try await runCurl(["-i", "-k", "--http2", "https://127.0.0.1:\(port)/tls"])
            #expect(h2.output.contains("HTTP/2 200"))
            #expect(h2.output.contains("\"x-forwarded-proto\":\"https\""))
            let h1 = try await runCurl(["-i", "-k", "--http1.1", "https://127.0.0.1:\(port)/tls"])
            #expect(h1.output.contains("HTTP/1.1 200"))
            // Reloading the files keeps serving (new connections use the new context).
            try configuration.tls!.reload()
            let again = try await runCurl(["-i", "-k", "--http2", "https://127.0.0.1:\(port)/tls"])
            #expect(again.output.contains("HTTP/2 200"))
            group.cancelAll()
        }
        await backend.stop()
    }

    /// A listener's context reloaded with `tls.clientCaFile` added asks new connections for a client
    /// certificate; removed again, it does not.
    @Test func listenerContextTakesTheReloadedFiles() async throws {
        let certificates = try await TestCertificates.make()
        let box = try TLSContextBox(certificatePath: certificates.serverCertFile, keyPath: certificates.serverKeyFile)
        var settings = TLSListenerSettings(port: 0, certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile)
        let backend = try await TestHTTPBackend.start(name: "b")
        defer { Task { await backend.stop() } }
        var configuration = HTTPFrontServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.tls = box
        let server = HTTPFrontServer(
            configuration: configuration, router: StaticRouter(target: .init(host: "127.0.0.1", port: backend.port)),
            pools: UpstreamPools(group: MultiThreadedEventLoopGroup.singleton),
            logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningAddress.port!
            let get = { try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.caFile, "https://127.0.0.1:\(port)/"]) }
            #expect(try await get().output == "200")
            settings.clientCaFile = certificates.caFile
            TLSContextBox.reloadLogging(box, running: settings, settings: settings, logger: Logger(label: "test"))
            #expect(box.files.clientCAPath == certificates.caFile)
            let refused = try await get()
            #expect(refused.status != 0 && refused.output == "000", "no client certificate after the reload: \(refused)")
            settings.clientCaFile = nil
            TLSContextBox.reloadLogging(box, running: settings, settings: settings, logger: Logger(label: "test"))
            #expect(try await get().output == "200")
            group.cancelAll()
        }
    }
}

import Foundation
import GatewayTesting
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOPosix
import Testing

@testable import GatewayCore

/// `/slow…` goes to the slow backend with a short response timeout (`/slow-2s…`: 2 s), `/local` is
/// answered at once by the router (no I/O), everything else goes to the fast backend.
private struct TwoBackendRouter: ProxyRouter {
    var fast: UpstreamTarget
    var slow: UpstreamTarget

    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult {
        if request.head.uri == "/local" {
            var response = HTTPResponse.error(.serviceUnavailable, "answered locally", requestID: request.requestID)
            response.headers.add(name: "Retry-After", value: "1")
            return .decided(.respond(response))
        }
        let slow = request.head.uri.hasPrefix("/slow")
        var plan = ForwardPlan(target: slow ? self.slow : fast, head: request.head)
        plan.responseTimeout = slow ? (request.head.uri.hasPrefix("/slow-2s") ? .seconds(2) : .milliseconds(300)) : .seconds(5)
        return .decided(.forward(plan))
    }

    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount) {}
}

private func withH2Front(
    router: any ProxyRouter, _ body: @escaping @Sendable (Int, HTTPFrontServer) async throws -> Void
) async throws {
    let pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton)
    let server = HTTPFrontServer(
        configuration: .init(host: "127.0.0.1", port: 0), router: router, pools: pools, logger: Logger(label: "test"))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningAddress.port!
        defer { group.cancelAll() }
        try await body(port, server)
    }
    pools.closeAll()
}

/// The front handlers (``HTTP1FrontHandler``, ``HTTP2FrontHandler``) with curl and h2load as clients:
/// local answers, streamed bodies larger than the flow-control windows both ways, and response
/// timeouts of one stream among others.
@Suite struct ProxyFrontTests {
    /// An answer the router gives at once to a request without a body keeps the HTTP/1.1 connection
    /// open: 20 such requests on one curl connection all get it, over one connect.
    @Test func immediateLocalAnswersKeepHTTP1ConnectionsOpen() async throws {
        let backend = try await TestHTTPBackend.start(name: "fast")
        let target = UpstreamTarget(host: "127.0.0.1", port: backend.port)
        try await withH2Front(router: TwoBackendRouter(fast: target, slow: target)) { port, _ in
            let urls = (0..<20).flatMap { _ in ["-o", "/dev/null", "http://127.0.0.1:\(port)/local"] }
            let (_, output) = try await runCurl(["-w", "%{http_code} %{num_connects}\n"] + urls)
            let lines = output.split(separator: "\n")
            #expect(lines.count == 20 && lines.allSatisfy { $0.hasPrefix("503 ") }, "\(output)")
            #expect(lines.filter { $0 == "503 1" }.count == 1, "reconnected: \(output)")
        }
        await backend.stop()
    }

    /// An upload with `Expect: 100-continue` (curl sends it for bodies over 1 MB) gets its go-ahead from
    /// the front at once: a 2 MB POST goes through whole without curl's wait (set to 5 s, so a missing
    /// go-ahead cannot hide in the time a busy machine takes for the upload).
    @Test func expectContinueIsAnsweredAtOnce() async throws {
        let backend = try await TestHTTPBackend.start(name: "fast")
        let target = UpstreamTarget(host: "127.0.0.1", port: backend.port)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gc-expect-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(repeating: UInt8(ascii: "x"), count: 2 * 1024 * 1024).write(to: file)
        try await withH2Front(router: TwoBackendRouter(fast: target, slow: target)) { port, _ in
            let (status, output) = try await runCurl(
                [
                    "-H", "Expect: 100-continue", "--expect100-timeout", "5", "--data-binary", "@" + file.path, "-w", "\n%{time_total}",
                    "http://127.0.0.1:\(port)/upload",
                ])
            #expect(status == 0, "\(output)")
            #expect(output.contains("\"body_bytes\":\(2 * 1024 * 1024)"), "\(output)")
            let seconds = Double(output.split(separator: "\n").last ?? "") ?? 99
            #expect(seconds < 4, "the upload took \(seconds) s: the client waited for its 100 Continue")
        }
        await backend.stop()
    }

    /// HTTP/2 header blocks become HTTP/1-style heads (Host from `:authority`, cookies joined), and
    /// malformed blocks, which could smuggle into the HTTP/1.1 request sent upstream, are refused.
    @Test func http2HeaderBlocksAreCheckedWhileTheyBecomeHeads() throws {
        func block(_ fields: [(String, String)]) -> HPACKHeaders { HPACKHeaders(fields) }
        let base = [(":method", "GET"), (":scheme", "http"), (":path", "/a?b"), (":authority", "example.com")]
        let (head, info) = try #require(
            HTTP2FrontHandler.requestHead(block(base + [("cookie", "a=1"), ("cookie", "b=2"), ("te", "trailers"), ("x-request-id", "r1")])))
        #expect(head.method == .GET && head.uri == "/a?b")
        #expect(head.headers.first(name: "host") == "example.com" && info.host == "example.com" && info.requestID == "r1")
        #expect(head.headers.first(name: "cookie") == "a=1; b=2" && !head.headers.contains(name: "te"))
        // What the proxy then need not find out again: no Content-Length field here, and the head's size.
        #expect(!info.mayHaveContentLength && (info.headerBytes ?? 0) > 60)
        let (_, withLength) = try #require(HTTP2FrontHandler.requestHead(block(base + [("content-length", "5")])))
        #expect(withLength.mayHaveContentLength)

        let malformed: [[(String, String)]] = [
            base + [("x-a", "1\r\nX-Injected: yes")],  // CR LF in a value
            base + [("x-a", "nul\u{0}")],
            base + [("X-Upper", "1")],  // upper-case name
            base + [("bad name", "1")],
            base + [("connection", "close")],  // connection-specific
            base + [("transfer-encoding", "chunked")],
            base + [("te", "gzip")],
            [(":method", "GET"), (":scheme", "http"), (":path", "/a HTTP/1.1\r\nX: y")],  // request-line smuggling
            [(":method", "GET"), (":scheme", "http"), (":path", "")],
            [(":method", "GET"), (":path", "/")],  // no :scheme
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":path", "/again")],
            [(":method", "GET"), (":scheme", "http"), ("x-a", "1"), (":path", "/")],  // pseudo after regular
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":status", "200")],
            [(":method", "CONNECT"), (":authority", "example.com:443")],
        ]
        for fields in malformed {
            #expect(HTTP2FrontHandler.requestHead(block(fields)) == nil, "accepted \(fields)")
        }
    }

    /// Every name the HTTP/2 front treats specially gets its role, and names of the same lengths that
    /// are not them (one letter off) are ordinary fields.
    @Test func http2FieldRolesByName() {
        let roles: [(String, HTTP2FrontHandler.FieldRole)] = [
            (":method", .method), (":path", .path), (":scheme", .scheme), (":authority", .authority),
            ("cookie", .cookie), ("host", .host), ("x-request-id", .requestID), ("content-length", .contentLength), ("x-forwarded-for", .forwarded),
            ("x-forwarded-proto", .forwarded), ("x-forwarded-host", .forwarded), ("te", .te),
            ("connection", .connectionSpecific), ("keep-alive", .connectionSpecific), ("transfer-encoding", .connectionSpecific),
            ("upgrade", .connectionSpecific), ("proxy-connection", .connectionSpecific),
        ]
        for (name, role) in roles {
            #expect(HTTP2FrontHandler.role(of: name) == role, "\(name)")
            let other = String(name.dropLast()) + (name.last == "z" ? "y" : "z")
            #expect(HTTP2FrontHandler.role(of: other) == .other, "\(other)")
        }
        for name in ["", "accept", "user-agent", ":status", ":protocol", "content-range", "x-forwarded-port"] {
            #expect(HTTP2FrontHandler.role(of: name) == .other, "\(name)")
        }
    }

    /// Response field names go out lower case, whatever case the backend used: names in HPACK's static
    /// table as its index, others as literals with ASCII letters folded and every other byte kept.
    @Test func http2ResponseNamesLowerCased() throws {
        let names = ["content-type", "Content-Type", "SERVER", "x-a_b.c~d!#$%&'*+^`|", "ETag", "A", "Z9-Q", "X-Odd"]
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders(names.map { ($0, "v") }))
        var block = ByteBuffer()
        HPACKFieldEncoder.writeHeadersFrame(ProxyResponseHead(head), extras: .init(requestID: "r"), stream: 1, endStream: false, into: &block)
        block.moveReaderIndex(forwardBy: 9)
        var decoder = HPACKDecoder(allocator: .init())
        let decoded = try decoder.decodeHeaders(from: &block)
        #expect(decoded.map(\.name) == [":status"] + names.map { $0.lowercased() } + ["x-request-id"])
        // And from an HTTP/1.1 backend's wire lines.
        var parser = HTTP1Parser(kind: .response, maxHeadBytes: 8192, fieldsOnWire: true)
        var wire = ByteBuffer(string: "HTTP/1.1 200 OK\r\n" + names.map { "\($0): v\r\n" }.joined() + "\r\n")
        guard case .responseHead(let wireHead, _)? = try parser.next(&wire) else {
            Issue.record("no head")
            return
        }
        var wireBlock = ByteBuffer()
        HPACKFieldEncoder.writeHeadersFrame(wireHead, extras: .init(requestID: "r"), stream: 1, endStream: false, into: &wireBlock)
        wireBlock.moveReaderIndex(forwardBy: 9)
        #expect(try decoder.decodeHeaders(from: &wireBlock).map(\.name) == decoded.map(\.name))
        // The static table's names, in any case, and names one letter off them.
        let table = [
            ("Age", 21), ("DATE", 33), ("ETag", 34), ("Vary", 59), ("Server", 54), ("Expires", 36), ("Location", 46),
            ("Set-Cookie", 55), ("Content-Type", 31), ("Cache-Control", 24), ("Last-Modified", 44), ("Accept-Ranges", 18),
            ("Content-Length", 28), ("Content-Encoding", 26), ("Retry-After", 53), ("WWW-Authenticate", 61),
        ]
        for (name, index) in table {
            let other = String(name.dropLast()) + (name.last == "X" ? "Y" : "X")
            #expect(HPACKFieldEncoder.staticNameIndex(name) == index, "\(name)")
            #expect(HPACKFieldEncoder.staticNameIndex(other) == nil, "\(other)")
            // The same for a name given as a wire line's bytes.
            #expect(Array(name.utf8).withUnsafeBufferPointer { HPACKFieldEncoder.staticNameIndex($0) } == index, "\(name)")
            #expect(Array(other.utf8).withUnsafeBufferPointer { HPACKFieldEncoder.staticNameIndex($0) } == nil, "\(other)")
        }
    }

    /// A response the router gives at once, before the request's END_STREAM has been read, arrives
    /// whole: headers, body and status.
    @Test func localAnswerArrivesWhole() async throws {
        let backend = try await TestHTTPBackend.start(name: "fast")
        let target = UpstreamTarget(host: "127.0.0.1", port: backend.port)
        try await withH2Front(router: TwoBackendRouter(fast: target, slow: target)) { port, _ in
            let (status, output) = try await runCurl(["--http2-prior-knowledge", "-i", "http://127.0.0.1:\(port)/local"])
            #expect(status == 0, "\(output)")
            #expect(output.hasPrefix("HTTP/2 503"), "\(output)")
            #expect(output.lowercased().contains("retry-after: 1"), "\(output)")
            #expect(output.contains("{\"error\":\"answered locally\",\"request_id\":"), "\(output)")
        }
        await backend.stop()
    }

    /// A 3 MB response (past the client's 64 KiB default stream window) and a 3 MB upload (past ours) go
    /// through byte for byte: window updates flow both ways.
    @Test func bodiesLargerThanTheWindowsStreamBothWays() async throws {
        let backend = try await TestHTTPBackend.start(name: "fast")
        let target = UpstreamTarget(host: "127.0.0.1", port: backend.port)
        let size = 3 * 1024 * 1024
        let big = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gc-h2-big-\(UUID().uuidString)")
        let received = FileManager.default.temporaryDirectory.appendingPathComponent("gc-h2-got-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(at: received)
        }
        try Data(big.readableBytesView).write(to: file)
        try await withH2Front(router: TwoBackendRouter(fast: target, slow: target)) { port, _ in
            backend.setFixedBody(big)
            let download = try await runCurl(
                [
                    "--http2-prior-knowledge", "-o", received.path, "-w", "%{http_code} %{http_version} %{size_download}",
                    "http://127.0.0.1:\(port)/big",
                ])
            #expect(download.output == "200 2 \(size)", "\(download.output)")
            #expect(try Data(contentsOf: received) == Data(contentsOf: file))

            backend.setFixedBody(nil)
            let upload = try await runCurl(
                [
                    "--http2-prior-knowledge", "--data-binary", "@" + file.path, "-H", "Content-Type: application/octet-stream",
                    "http://127.0.0.1:\(port)/upload",
                ])
            #expect(upload.status == 0, "\(upload.output)")
            #expect(upload.output.contains("\"body_bytes\":\(size)"), "\(upload.output)")
        }
        await backend.stop()
    }

    /// On one connection, a stream whose backend is slower than the response timeout gets 504 while a
    /// stream to a fast backend next to it gets 200 without waiting for it; afterwards no stream is
    /// left open. (h2load: one connection, both requests in flight at once.)
    @Test func oneStreamTimesOutWhileItsNeighbourIsAnswered() async throws {
        let fast = try await TestHTTPBackend.start(name: "fast")
        let slow = try await TestHTTPBackend.start(name: "slow")
        slow.setDelay(.seconds(5))
        let router = TwoBackendRouter(
            fast: UpstreamTarget(host: "127.0.0.1", port: fast.port), slow: UpstreamTarget(host: "127.0.0.1", port: slow.port))
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("gc-h2load-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: log) }
        try await withH2Front(router: router) { port, server in
            let (_, output) = try await runTool(
                "/usr/bin/h2load",
                ["-n", "2", "-c", "1", "-m", "2", "--log-file", log.path, "http://127.0.0.1:\(port)/slow-2s", "http://127.0.0.1:\(port)/fast"])
            #expect(output.contains("status codes: 1 2xx, 0 3xx, 0 4xx, 1 5xx"), "\(output)")
            // Log lines: start time (µs), status, latency (µs).
            let entries = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t") }
            let latency = { (status: String) in entries.first { $0.count >= 3 && $0[1] == status }.flatMap { Int($0[2]) } }
            let timedOut = try #require(latency("504"), "\(entries)")
            let answered = try #require(latency("200"), "\(entries)")
            // A 2 s timeout, so that the neighbour's answer has room on a busy machine.
            #expect(timedOut >= 1_900_000 && timedOut < 4_500_000, "the 504 came after \(timedOut) µs, not after the 2 s timeout")
            #expect(answered < timedOut, "the 200 waited for its neighbour (\(answered) µs)")
            try await waitUntil("no open HTTP/2 stream", timeout: .seconds(5)) { server.activeStreamCount == 0 }
        }
        await fast.stop()
        await slow.stop()
    }
}

import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// Requests the engine refuses, on the data listener and the admin listener.
    @Suite struct BadInput {
        static let limits = [
            "limits.maxBodyBytes": "1024", "limits.maxHeaderBytes": "2048", "limits.headerReadTimeout": "300ms",
            "limits.bodyReadTimeout": "300ms",
        ]

        /// Reads what the engine sends for `request` until it closes the connection.
        static func exchange(_ port: Int, _ request: String, timeout: Duration = .seconds(5)) async throws -> [UInt8] {
            try await RawTCP.exchange(port: port, request: Array(request.utf8), timeout: timeout) { _ in false }
        }

        /// An API's `max_body_bytes` below the listener's limit: bodies past it get 413 naming it, announced
        /// (before the backend is called, keyless and keyed) or streamed chunked; other APIs keep the
        /// listener's limit; a value above the listener's leaves the listener's in force.
        @Test func anAPIsOwnBodyLimitGets413() async throws {
            try await withBackends(["sink"]) { backends in
                try await withEngines(settings: Self.limits) { cluster in
                    try await cluster.putAPI(apiJSON("small", path: "/small", targets: [backends[0].port], extra: #""max_body_bytes":100"#))
                    try await cluster.putAPI(
                        apiJSON(
                            "smallkeyed", path: "/smallkeyed", targets: [backends[0].port], extra: #""max_body_bytes":100,"auth":{"mode":"api_key"}"#)
                    )
                    try await cluster.putAPI(apiJSON("wide", path: "/wide", targets: [backends[0].port], extra: #""max_body_bytes":100000"#))
                    try await cluster.putAPI(apiJSON("plain", path: "/plain", targets: [backends[0].port]))
                    let (key, _) = try await cluster.createKey(#"{"name":"k"}"#)
                    let port = cluster.first.port

                    #expect(try await cluster.first.send(.POST, "/small/x", body: String(repeating: "a", count: 100)).status == 200)
                    let before = backends[0].requestCount
                    let over = try await cluster.first.send(.POST, "/small/x", body: String(repeating: "a", count: 101))
                    #expect(over.status == 413)
                    #expect(over.string("error") == "request body larger than 100 bytes")
                    #expect(over.string("request_id") == over.header("X-Request-ID"))
                    let keyed = try await cluster.first.send(
                        .POST, "/smallkeyed/x", headers: [("X-API-Key", key)], body: String(repeating: "a", count: 500))
                    #expect(keyed.status == 413)
                    let chunk = String(repeating: "x", count: 200)
                    let streamed = parseRawResponses(
                        try await Self.exchange(port, "POST /small/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nc8\r\n\(chunk)\r\n"))
                    #expect(streamed.map(\.status) == [413])
                    // Over h2c: a body past the limit in DATA frames.
                    let h2 = try await runCurl([
                        "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge", "--data-binary", String(repeating: "b", count: 300),
                        "http://127.0.0.1:\(port)/small/x",
                    ])
                    #expect(h2.output == "413", "\(h2.output)")
                    #expect(
                        backends[0].seen.dropFirst(before).allSatisfy { $0.body.readableBytes <= 100 }, "no body past 100 bytes reached the backend")

                    #expect(try await cluster.first.send(.POST, "/plain/x", body: String(repeating: "a", count: 1000)).status == 200)
                    #expect(try await cluster.first.send(.POST, "/wide/x", body: String(repeating: "a", count: 1000)).status == 200)
                    let wideOver = try await cluster.first.send(.POST, "/wide/x", body: String(repeating: "a", count: 2000))
                    #expect(
                        wideOver.status == 413 && wideOver.string("error") == "request body larger than 1024 bytes",
                        "the listener's limit stays the ceiling")

                    let bad = try await cluster.first.admin(
                        .PUT, "/apis/bad", json: apiJSON("bad", path: "/bad", targets: [backends[0].port], extra: #""max_body_bytes":-1"#))
                    #expect(bad.status == 400 && bad.text.contains("max_body_bytes"), "\(bad)")
                }
            }
        }

        /// A body over `limits.maxBodyBytes` gets 413 (announced by `Content-Length`, or streamed chunked)
        /// and a closed connection; the backend sees nothing.
        @Test func oversizedBodyGets413() async throws {
            try await withBackends(["sink"]) { backends in
                try await withEngines(settings: Self.limits) { cluster in
                    try await cluster.putAPI(apiJSON("sink", path: "/sink", targets: [backends[0].port]))
                    let port = cluster.first.port
                    let announced = parseRawResponses(try await Self.exchange(port, "POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"))
                    #expect(announced.map(\.status) == [413])
                    #expect(announced.first?.string("request_id") == announced.first?.header("X-Request-ID"))
                    #expect(announced.first?.header("Connection") == "close")

                    // The body sent at once behind the head: the answer must survive the unread bytes.
                    let sent = parseRawResponses(
                        try await Self.exchange(
                            port, "POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 50000\r\n\r\n" + String(repeating: "z", count: 50000)))
                    #expect(sent.map(\.status) == [413])

                    let chunk = String(repeating: "x", count: 2000)
                    let streamed = parseRawResponses(
                        try await Self.exchange(port, "POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n\(chunk)\r\n"))
                    #expect(streamed.map(\.status) == [413])
                    #expect(backends[0].seen.allSatisfy { $0.body.readableBytes <= 1024 }, "no oversized body reached the backend")

                    let small = try await cluster.first.send(.POST, "/sink", body: String(repeating: "y", count: 1000))
                    #expect(small.status == 200)
                    #expect(small.json?["body_bytes"] as? Int == 1000)
                }
            }
        }

        /// A request head over `limits.maxHeaderBytes` gets 431.
        @Test func oversizedHeaderGets431() async throws {
            try await withEngines(settings: Self.limits) { cluster in
                for size in [4000, 40_000] {
                    let big = String(repeating: "h", count: size)
                    let responses = parseRawResponses(
                        try await Self.exchange(cluster.first.port, "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: \(big)\r\n\r\n"))
                    #expect(responses.map(\.status) == [431], "a \(size)-byte header")
                    #expect(responses.first?.header("Content-Type") == "application/json")
                    #expect(responses.first?.string("request_id") != nil)
                }
            }
        }

        /// A client that sends half a request head and stops gets 408 once `limits.headerReadTimeout`
        /// (300 ms) has passed, and its connection is closed.
        @Test func slowClientGets408AndIsClosedAfterTheHeaderReadTimeout() async throws {
            try await withEngines(settings: Self.limits) { cluster in
                let start = ContinuousClock.now
                let bytes = try await Self.exchange(cluster.first.port, "GET /slow HTTP/1.1\r\nHost: a\r\nX-Partial: ", timeout: .seconds(3))
                let elapsed = ContinuousClock.now - start
                let responses = parseRawResponses(bytes)
                #expect(responses.map(\.status) == [408])
                #expect(responses.first?.header("Connection") == "close")
                #expect(elapsed >= .milliseconds(280) && elapsed < .milliseconds(1500), "closed after \(elapsed)")
                try await waitUntil("the engine to drop the connection", timeout: .seconds(10)) { cluster.first.engine.front.connectionCount == 0 }
            }
        }

        /// A client that stops in the middle of its request body gets 408 once `limits.bodyReadTimeout`
        /// (300 ms) passes without a byte, and its connection is closed; one whose body keeps coming, more
        /// slowly than that in all but never pausing that long, is answered.
        @Test func stalledBodyGets408AfterTheBodyReadTimeout() async throws {
            try await withBackends(["sink"]) { backends in
                try await withEngines(settings: Self.limits) { cluster in
                    try await cluster.putAPI(apiJSON("sink", path: "/sink", targets: [backends[0].port]))
                    let port = cluster.first.port
                    let head = "POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
                    let start = ContinuousClock.now
                    let stalled = try await RawTCP.exchange(
                        port: port, request: Array((head + String(repeating: "s", count: 10)).utf8), timeout: .seconds(3)
                    ) { _ in false }
                    let elapsed = ContinuousClock.now - start
                    let responses = parseRawResponses(stalled)
                    #expect(responses.map(\.status) == [408])
                    #expect(responses.first?.header("Connection") == "close")
                    #expect(responses.first?.string("request_id") == responses.first?.header("X-Request-ID"))
                    #expect(elapsed >= .milliseconds(280) && elapsed < .milliseconds(1500), "answered after \(elapsed)")

                    // 100 bytes over ~0.8 s, 20 at a time every 0.16 s: slower than the timeout in all, never paused that long.
                    let steady = try await RawTCP.exchange(
                        port: port, request: Array((head + String(repeating: "a", count: 20)).utf8),
                        later: (0..<4).map { _ in (pause: .milliseconds(160), bytes: Array(String(repeating: "b", count: 20).utf8)) },
                        timeout: .seconds(5)
                    ) { bytes in parseRawResponses(bytes).first.map { $0.body.count == Int($0.header("Content-Length") ?? "") } ?? false }
                    let answered = parseRawResponses(steady)
                    #expect(answered.map(\.status) == [200])
                    #expect(answered.first?.json?["body_bytes"] as? Int == 100)
                    try await waitUntil("the engine to drop both connections", timeout: .seconds(10)) {
                        cluster.first.engine.front.connectionCount == 0
                    }
                }
            }
        }

        /// A malformed request gets a JSON 400 and a closed connection, and the engine keeps serving.
        @Test func malformedRequestGets400() async throws {
            try await withEngines(settings: Self.limits) { cluster in
                let port = cluster.first.port
                let responses = parseRawResponses(try await Self.exchange(port, "GET /x HTTP/1.1\r\nHost: a\r\nthis is not a header\r\n\r\n"))
                #expect(responses.map(\.status) == [400])
                #expect(responses.first?.string("error")?.hasPrefix("malformed HTTP request") == true)
                let garbage = parseRawResponses(try await Self.exchange(port, "\u{1}\u{2}\u{3} nonsense\r\n\r\n"))
                #expect(garbage.map(\.status) == [400])
                #expect(try await cluster.first.send(.GET, "/still-serving").status == 404)
            }
        }

        /// The admin API refuses calls without the token (401), bad JSON and invalid definitions (400,
        /// naming the problem and the field).
        @Test func adminRefusesBadInputNamingTheProblem() async throws {
            try await withEngines { cluster in
                let engine = cluster.first
                let valid = apiJSON("valid", path: "/valid", targets: [9])
                #expect(try await engine.admin(.GET, "/apis", token: nil).status == 401)
                let wrongToken = try await engine.admin(.PUT, "/apis/valid", json: valid, token: "not-the-admin-token-at-all")
                #expect(wrongToken.status == 401)
                #expect(wrongToken.string("request_id") != nil)
                #expect(try await engine.admin(.POST, "/keys", json: #"{"name":"x"}"#, token: nil).status == 401)
                #expect(try await engine.admin(.GET, "/health", token: nil).status == 200, "/health needs no token")

                let notJSON = try await engine.admin(.PUT, "/apis/valid", json: #"{"id": "valid", "#)
                #expect(notJSON.status == 400)
                #expect(notJSON.string("error")?.contains("JSON") == true, "\(notJSON)")

                let badURL = try await engine.admin(.PUT, "/apis/bad", json: #"{"id":"bad","listen_path":"/bad","targets":[{"url":"ftp://x"}]}"#)
                #expect(badURL.status == 400)
                #expect(badURL.string("error")?.contains("targets[0].url") == true, "\(badURL)")

                let badLimit = try await engine.admin(
                    .PUT, "/apis/bad",
                    json: #"{"id":"bad","listen_path":"/bad","targets":[{"url":"http://127.0.0.1:9"}],"rate_limit":{"rate":"many"}}"#)
                #expect(badLimit.status == 400)
                #expect(badLimit.string("error")?.contains("rate_limit.rate") == true, "\(badLimit)")

                let unknownField = try await engine.admin(
                    .PUT, "/apis/bad", json: #"{"id":"bad","listen_path":"/bad","targets":[{"url":"http://127.0.0.1:9"}],"timeout":5}"#)
                #expect(unknownField.status == 400)
                #expect(unknownField.string("error")?.contains("timeout") == true, "\(unknownField)")

                let mismatch = try await engine.admin(.PUT, "/apis/other", json: valid)
                #expect(mismatch.status == 400)
                #expect(mismatch.string("error")?.contains("id") == true)

                let badKey = try await engine.admin(.POST, "/keys", json: #"{"name":5}"#)
                #expect(badKey.status == 400)
                #expect(badKey.string("error")?.contains("name") == true, "\(badKey)")

                let badPurge = try await engine.admin(.POST, "/cache/purge", json: #"{"scope":"everything"}"#)
                #expect(badPurge.status == 400)
                #expect(badPurge.string("error")?.hasPrefix("scope:") == true, "\(badPurge)")

                let listing = try await engine.admin(.GET, "/apis")
                #expect(listing.status == 200)
                #expect(!listing.text.contains("\"bad\""), "nothing invalid was stored")
            }
        }
    }
}

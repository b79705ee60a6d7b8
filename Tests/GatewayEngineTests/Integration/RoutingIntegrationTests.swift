import GatewayTesting
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// Requests reach the right API and backend, with the path, request id and forwarding headers a
    /// backend expects.
    @Suite struct Routing {
        /// The longest matching listen path wins, on segment boundaries; `strip_listen_path` removes it
        /// before forwarding and keeps the query; an inactive API is skipped.
        @Test func longestPrefixWinsAndStripListenPathForwardsTheRest() async throws {
            try await withBackends(["shop", "cart"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("shop", path: "/shop", targets: [backends[0].port]))
                    try await cluster.putAPI(apiJSON("cart", path: "/shop/cart", strip: true, targets: [backends[1].port]))
                    let engine = cluster.first

                    let items = try await engine.send(.GET, "/shop/items?page=2")
                    #expect(items.status == 200)
                    #expect(items.backend == "shop")
                    #expect(items.string("uri") == "/shop/items?page=2", "not stripped: the whole path goes through")

                    let cart = try await engine.send(.GET, "/shop/cart/42?expand=lines")
                    #expect(cart.backend == "cart")
                    #expect(cart.string("uri") == "/42?expand=lines", "stripped: the listen path is gone, the query kept")

                    let cartRoot = try await engine.send(.GET, "/shop/cart")
                    #expect(cartRoot.backend == "cart")
                    #expect(cartRoot.string("uri") == "/")

                    let lookalike = try await engine.send(.GET, "/shop/cartography")
                    #expect(lookalike.backend == "shop", "/shop/cart does not match /shop/cartography")
                    #expect(lookalike.string("uri") == "/shop/cartography")

                    let outside = try await engine.send(.GET, "/shopping")
                    #expect(outside.status == 404, "/shop does not match /shopping")

                    try await cluster.putAPI(apiJSON("cart", path: "/shop/cart", strip: true, targets: [backends[1].port], extra: #""active":false"#))
                    #expect(try await engine.send(.GET, "/shop/cart/42").backend == "shop", "an inactive API is not routed")
                    #expect(backends[0].requestCount == 3)
                    #expect(backends[1].requestCount == 2)
                }
            }
        }

        /// An API with hosts is chosen by the `Host` header (port and case ignored) before any API
        /// without hosts.
        @Test func hostBasedAPIIsChosenByTheHostHeader() async throws {
            try await withBackends(["hosted", "anyhost"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("hosted", hosts: ["api.example.com"], targets: [backends[0].port]))
                    try await cluster.putAPI(apiJSON("anyhost", path: "/", targets: [backends[1].port]))
                    let engine = cluster.first

                    let hosted = try await engine.send(.GET, "/v1/orders", headers: [("Host", "API.example.com:8443")])
                    #expect(hosted.status == 200)
                    #expect(hosted.backend == "hosted")
                    #expect(hosted.string("uri") == "/v1/orders")
                    #expect(hosted.echoedHeader("host") == "127.0.0.1:\(backends[0].port)", "the backend gets its own authority")
                    #expect(hosted.echoedHeader("x-forwarded-host") == "API.example.com:8443")

                    let other = try await engine.send(.GET, "/v1/orders", headers: [("Host", "www.example.com")])
                    #expect(other.backend == "anyhost")
                }
            }
        }

        /// A path no API claims gets a JSON 404 whose `request_id` is the response's `X-Request-ID`.
        @Test func unknownPathGetsJSON404WithRequestID() async throws {
            try await withEngines { cluster in
                let response = try await cluster.first.send(.GET, "/nothing/here")
                #expect(response.status == 404)
                #expect(response.header("Content-Type") == "application/json")
                let id = try #require(response.header("X-Request-ID"))
                #expect(!id.isEmpty)
                #expect(response.string("request_id") == id)
                #expect(response.string("error")?.contains("/nothing/here") == true)
            }
        }

        /// An API's `methods`: others get 405 with `Allow` (HEAD going with GET) and a JSON body, before any
        /// key is asked for and without a backend call; a CORS preflight is still answered.
        @Test func methodsOutsideTheListGet405WithAllow() async throws {
            try await withBackends(["ro"]) { backends in
                try await withEngines { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(
                        apiJSON(
                            "ro", path: "/ro", targets: [backends[0].port],
                            extra: #""methods":["get","POST"],"auth":{"mode":"api_key"},"cors":{"allow_origins":["https://app.test"]}"#))
                    let (key, _) = try await cluster.createKey(#"{"name":"ro"}"#)
                    for method in [HTTPMethod.GET, .HEAD, .POST] {
                        #expect(try await engine.send(method, "/ro/x", headers: [("X-API-Key", key)]).status == 200, "\(method)")
                    }
                    let refused = try await engine.send(.DELETE, "/ro/x")
                    #expect(refused.status == 405)
                    #expect(refused.header("Allow") == "GET, POST, HEAD")
                    #expect(refused.string("error") == "method DELETE not allowed")
                    #expect(refused.string("request_id") == refused.header("X-Request-ID"))
                    #expect(backends[0].requestCount == 3)
                    let preflight = try await engine.send(
                        .OPTIONS, "/ro/x", headers: [("Origin", "https://app.test"), ("Access-Control-Request-Method", "POST")])
                    #expect(preflight.status == 204)

                    let bad = try await engine.admin(
                        .PUT, "/apis/bad", json: apiJSON("bad", path: "/bad", targets: [backends[0].port], extra: #""methods":["GET","NO WAY"]"#))
                    #expect(bad.status == 400)
                    #expect(bad.text.contains("methods[1]"), "\(bad.text)")
                }
            }
        }

        /// A client's `X-Request-ID` is kept: the backend sees it and the response echoes it; without
        /// one, each request gets a fresh id.
        @Test func clientRequestIDIsKeptAndEchoed() async throws {
            try await withBackends(["echo"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("echo", path: "/echo", targets: [backends[0].port]))
                    let response = try await cluster.first.send(.GET, "/echo", headers: [("X-Request-ID", "client-chosen-id-42")])
                    #expect(response.status == 200)
                    #expect(response.header("X-Request-ID") == "client-chosen-id-42")
                    #expect(response.echoedHeader("x-request-id") == "client-chosen-id-42")

                    let a = try await cluster.first.send(.GET, "/echo")
                    let b = try await cluster.first.send(.GET, "/echo")
                    let idA = try #require(a.header("X-Request-ID"))
                    #expect(a.echoedHeader("x-request-id") == idA)
                    #expect(idA != b.header("X-Request-ID"))
                }
            }
        }

        /// With `log.access`, one line per request names the API, the client (the key id, never the key),
        /// the backend target that answered and its time to first byte; a cache fill names its target, a
        /// hit and a local refusal `-`; no query string.
        @Test func accessLogNamesTheUpstreamAndItsTime() async throws {
            let logs = InMemoryLogHandler.Store()
            try await withBackends(["slowish"]) { backends in
                backends[0].setDelay(.milliseconds(60))
                try await withEngines(settings: ["log.access": "true"], accessLogs: logs) { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(apiJSON("logged", path: "/logged", targets: [backends[0].port], extra: #""auth":{"mode":"api_key"}"#))
                    try await cluster.putAPI(apiJSON("cached", path: "/cached", targets: [backends[0].port], extra: #""cache":{"enabled":true}"#))
                    let (key, id) = try await cluster.createKey(#"{"name":"logs"}"#)
                    let target = "http://127.0.0.1:\(backends[0].port)"
                    let sent = [
                        try await engine.send(.GET, "/logged/a?token=secret", headers: [("X-API-Key", key), ("X-Request-ID", "log-1")]),
                        try await engine.send(.GET, "/logged/a", headers: [("X-Request-ID", "log-2")]),
                        try await engine.send(.GET, "/cached/c", headers: [("X-Request-ID", "log-3")]),
                        try await engine.send(.GET, "/cached/c", headers: [("X-Request-ID", "log-4")]),
                    ]
                    #expect(sent.map(\.status) == [200, 401, 200, 200])
                    /// The fields of the access line of `requestID`, as text.
                    func line(_ requestID: String) async throws -> [String: String] {
                        let isIt = { (entry: InMemoryLogHandler.Entry) -> Bool in
                            entry.message == "request" && entry.metadata["request.id"].map { "\($0)" } == requestID
                        }
                        try await waitUntil("the access line of \(requestID)", timeout: .seconds(5), interval: .milliseconds(10)) {
                            logs.entries.contains(where: isIt)
                        }
                        return (logs.entries.first(where: isIt)?.metadata ?? [:]).mapValues { "\($0)" }
                    }
                    let forwarded = try await line("log-1")
                    #expect(forwarded["api"] == "logged", "\(forwarded)")
                    #expect(forwarded["client"] == "key:\(id)")
                    #expect(forwarded["http.path"] == "/logged/a")
                    #expect(forwarded["upstream"] == target)
                    let upstreamMS = try #require(Double(forwarded["upstream_ms"] ?? "-"), "\(forwarded)")
                    let totalMS = try #require(Double(forwarded["duration_ms"] ?? "-"))
                    #expect(upstreamMS >= 50 && upstreamMS <= totalMS, "\(forwarded)")
                    #expect(try await line("log-2")["upstream"] == "-", "refused at the engine")
                    #expect(try await line("log-3")["upstream"] == target, "a cache fill")
                    #expect(try await line("log-4")["upstream"] == "-", "a cache hit")
                    #expect(!logs.entries.contains { "\($0.metadata)".contains("secret") || "\($0.metadata)".contains(key) })
                }
            }
        }

        /// `X-Forwarded-For` (appended), `-Proto` and `-Host` reach the backend; hop-by-hop headers
        /// (fixed ones and those `Connection` names) are removed both ways.
        @Test func forwardedHeadersAreSetAndHopByHopHeadersRemoved() async throws {
            try await withBackends(["hop"]) { backends in
                backends[0].setResponseHeader("Keep-Alive", "timeout=99")
                backends[0].setResponseHeader("Proxy-Authenticate", "Basic")
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("hop", path: "/hop", targets: [backends[0].port]))
                    let response = try await cluster.first.send(
                        .GET, "/hop",
                        headers: [
                            ("Host", "gateway.example.com"), ("X-Forwarded-For", "203.0.113.7"),
                            ("Connection", "keep-alive, X-Hop-Secret"), ("X-Hop-Secret", "do-not-forward"),
                            ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
                            ("X-End-To-End", "kept"),
                        ])
                    #expect(response.status == 200)
                    #expect(response.echoedHeader("x-forwarded-for") == "203.0.113.7, 127.0.0.1")
                    #expect(response.echoedHeader("x-forwarded-proto") == "http")
                    #expect(response.echoedHeader("x-forwarded-host") == "gateway.example.com")
                    #expect(response.echoedHeader("x-end-to-end") == "kept")
                    for name in ["x-hop-secret", "keep-alive", "te", "proxy-authorization"] {
                        #expect(response.echoedHeader(name) == nil, "\(name) must not reach the backend")
                    }
                    #expect(response.header("Keep-Alive") == nil)
                    #expect(response.header("Proxy-Authenticate") == nil)
                    #expect(response.header("X-Backend") == "hop", "end-to-end response headers pass")
                }
            }
        }
    }
}

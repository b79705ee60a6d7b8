import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// An API's `cors`, answered by the engine: preflights without credentials or a backend call, and the
    /// CORS fields on answers to allowed origins, refusals included.
    @Suite struct CORS {
        static let origin = "https://app.example.test"

        @Test func preflightsAndResponsesForAllowedOrigins() async throws {
            try await withBackends(["b", "open"]) { backends in
                try await withEngines { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(
                        apiJSON(
                            "cors", path: "/cors", targets: [backends[0].port],
                            extra: #"""
                                "auth":{"mode":"api_key"},
                                "cors":{"allow_origins":["\#(Self.origin)"],"allow_methods":["GET","PUT"],"expose_headers":["X-Trace"],"allow_credentials":true,"max_age_seconds":120}
                                """#))
                    try await cluster.putAPI(
                        apiJSON("open", path: "/open", targets: [backends[1].port], extra: #""cors":{"allow_origins":["*"]}"#))
                    let (key, _) = try await cluster.createKey(#"{"name":"web"}"#)

                    // A preflight: 204 from the engine, no key asked for, no backend call.
                    let preflight = try await engine.send(
                        .OPTIONS, "/cors/items",
                        headers: [
                            ("Origin", Self.origin), ("Access-Control-Request-Method", "PUT"),
                            ("Access-Control-Request-Headers", "content-type, x-api-key"),
                        ])
                    #expect(preflight.status == 204)
                    #expect(preflight.header("Access-Control-Allow-Origin") == Self.origin)
                    #expect(preflight.header("Access-Control-Allow-Methods") == "GET, PUT")
                    #expect(preflight.header("Access-Control-Allow-Headers") == "content-type, x-api-key")
                    #expect(preflight.header("Access-Control-Allow-Credentials") == "true")
                    #expect(preflight.header("Access-Control-Max-Age") == "120")
                    #expect(backends[0].requestCount == 0)
                    // Another origin, or a method not allowed: 403 with the reason.
                    let stranger = try await engine.send(
                        .OPTIONS, "/cors/items", headers: [("Origin", "https://evil.test"), ("Access-Control-Request-Method", "GET")])
                    #expect(stranger.status == 403)
                    #expect(stranger.string("error") == "CORS: origin https://evil.test not allowed")
                    let delete = try await engine.send(
                        .OPTIONS, "/cors/items", headers: [("Origin", Self.origin), ("Access-Control-Request-Method", "DELETE")])
                    #expect(delete.status == 403)
                    #expect(delete.string("error") == "CORS: method DELETE not allowed")

                    // The call itself: the origin's fields on the backend's answer and on a refusal.
                    let call = try await engine.send(.GET, "/cors/items", headers: [("Origin", Self.origin), ("X-API-Key", key)])
                    #expect(call.status == 200)
                    #expect(call.header("Access-Control-Allow-Origin") == Self.origin)
                    #expect(call.header("Access-Control-Allow-Credentials") == "true")
                    #expect(call.header("Access-Control-Expose-Headers") == "X-Trace")
                    let refused = try await engine.send(.GET, "/cors/items", headers: [("Origin", Self.origin)])
                    #expect(refused.status == 401)
                    #expect(refused.header("Access-Control-Allow-Origin") == Self.origin, "a page can read why it was refused")
                    let other = try await engine.send(.GET, "/cors/items", headers: [("Origin", "https://evil.test"), ("X-API-Key", key)])
                    #expect(other.status == 200)
                    #expect(other.header("Access-Control-Allow-Origin") == nil)
                    #expect(other.header("Vary") == "Origin")
                    #expect(backends[0].requestCount == 2)

                    // Any origin, without credentials: `*`, on the fast keyless path too.
                    let open = try await engine.send(.GET, "/open/x", headers: [("Origin", "https://anyone.test")])
                    #expect(open.status == 200)
                    #expect(open.header("Access-Control-Allow-Origin") == "*")
                    #expect(try await engine.send(.GET, "/open/x").header("Access-Control-Allow-Origin") == nil, "no Origin, no CORS fields")

                    // `*` with credentials is refused when the definition is saved.
                    let bad = try await engine.admin(
                        .PUT, "/apis/bad",
                        json: apiJSON(
                            "bad", path: "/bad", targets: [backends[0].port], extra: #""cors":{"allow_origins":["*"],"allow_credentials":true}"#))
                    #expect(bad.status == 400)
                    #expect(bad.text.contains("cors.allow_origins"))
                }
            }
        }
    }
}

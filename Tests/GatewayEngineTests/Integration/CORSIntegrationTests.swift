import Foundation
import GatewayTesting
import JWTKit
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
                    let plain = try await engine.send(.GET, "/open/x")
                    #expect(plain.header("Access-Control-Allow-Origin") == nil, "no Origin, no CORS fields")
                    #expect(plain.header("Vary") == "Origin", "but a shared cache learns the answer varies with it")

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

    /// An API's `request_headers` (remove, then set, after the engine's own credential handling) and
    /// `response_headers` (added to the backend's answers and to the engine's own refusals).
    @Suite struct HeaderRules {
        @Test func requestFieldsSetAndRemovedResponseFieldsAdded() async throws {
            try await withBackends(["b"]) { backends in
                try await withEngines { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(
                        apiJSON(
                            "rules", path: "/rules", targets: [backends[0].port],
                            extra: #"""
                                "auth":{"mode":"jwt","jwt":{"keys":[{"algorithm":"HS256","secret":"rules-secret-0123456789abcdefghij"}]}},
                                "request_headers":{"set":{"Authorization":"Basic YmFja2VuZDpzZWNyZXQ=","X-Env":"prod"},"remove":["Cookie"]},
                                "response_headers":{"add":{"Strict-Transport-Security":"max-age=63072000"}}
                                """#))
                    backends[0].setRecording(true)
                    let token = try await JWTKeyCollection().add(hmac: HMACKey(from: "rules-secret-0123456789abcdefghij"), digestAlgorithm: .sha256)
                        .sign(RuleClaims(sub: "svc", exp: Date().timeIntervalSince1970 + 300))
                    let ok = try await engine.send(
                        .GET, "/rules/x", headers: [("Authorization", "Bearer \(token)"), ("Cookie", "session=1"), ("X-Env", "dev")])
                    #expect(ok.status == 200)
                    #expect(ok.header("Strict-Transport-Security") == "max-age=63072000")
                    let seen = try #require(backends[0].seen.last)
                    #expect(seen.headers[canonicalForm: "Authorization"] == ["Basic YmFja2VuZDpzZWNyZXQ="], "the backend's credential, not the token")
                    #expect(seen.headers[canonicalForm: "X-Env"] == ["prod"])
                    #expect(!seen.headers.contains(name: "Cookie"))
                    #expect(seen.headers.first(name: "X-Gateway-Client-ID") == "jwt:svc")

                    let refused = try await engine.send(.GET, "/rules/x")
                    #expect(refused.status == 401)
                    #expect(refused.header("Strict-Transport-Security") == "max-age=63072000")

                    let bad = try await engine.admin(
                        .PUT, "/apis/bad",
                        json: apiJSON(
                            "bad", path: "/bad", targets: [backends[0].port],
                            extra: #""request_headers":{"set":{"Host":"x","X-Ok":"a\nb"},"remove":["Content-Length"]}"#))
                    #expect(bad.status == 400)
                    for key in ["request_headers.set.Host", "request_headers.set.X-Ok", "request_headers.remove[0]"] {
                        #expect(bad.text.contains(key), "\(key): \(bad.text)")
                    }
                }
            }
        }
    }
}

extension EngineIntegration.HeaderRules {
    /// `response_headers.remove` leaves the backend's fields out of proxied answers (the backend's head
    /// relayed line by line), cached ones (a miss and a hit) and HTTP/2 answers; `remove` and `add` of one
    /// name replace the backend's value; with `cors`, the engine's CORS fields replace the backend's.
    @Test func backendResponseFieldsRemoved() async throws {
        try await withBackends(["b"]) { backends in
            backends[0].setResponseHeader("Server", "backend/1.2")
            backends[0].setResponseHeader("X-Powered-By", "php")
            backends[0].setResponseHeader("Access-Control-Allow-Origin", "*")
            backends[0].setResponseHeader("X-Kept", "yes")
            backends[0].setResponseHeader("X-Replaced", "backend")
            try await withEngines { cluster in
                let engine = cluster.first
                let rules =
                    #""response_headers":{"remove":["server","X-Powered-By","X-Replaced"],"add":{"X-Replaced":"engine"}},"cors":{"allow_origins":["https://app.test"]}"#
                try await cluster.putAPI(apiJSON("hidden", path: "/hidden", targets: [backends[0].port], extra: rules))
                try await cluster.putAPI(
                    apiJSON("cached", path: "/cached", targets: [backends[0].port], extra: rules + #","cache":{"enabled":true}"#))
                try await cluster.putAPI(apiJSON("plain", path: "/plain", targets: [backends[0].port]))

                for (path, cache) in [("/hidden/x", nil), ("/cached/x", "MISS"), ("/cached/x", "HIT")] {
                    let response = try await engine.send(.GET, path, headers: [("Origin", "https://app.test")])
                    #expect(response.status == 200)
                    #expect(response.header("X-Cache") == cache, "\(path)")
                    #expect(response.header("Server") == nil && response.header("X-Powered-By") == nil, "\(path): \(response)")
                    #expect(response.headers[canonicalForm: "Access-Control-Allow-Origin"] == ["https://app.test"], "\(path): \(response)")
                    #expect(response.header("X-Kept") == "yes")
                    #expect(response.headers[canonicalForm: "X-Replaced"] == ["engine"], "remove and add replace: \(response)")
                }
                let h2 = try await runCurl(["-si", "--http2-prior-knowledge", "http://127.0.0.1:\(engine.port)/hidden/x"])
                let h2Head = h2.output.lowercased()
                #expect(h2Head.hasPrefix("http/2 200"), "\(h2.output)")
                #expect(!h2Head.contains("\nserver:") && !h2Head.contains("x-powered-by") && h2Head.contains("x-kept: yes"), "\(h2.output)")
                let plain = try await engine.send(.GET, "/plain/x")
                #expect(plain.header("Server") == "backend/1.2", "an API without the rule keeps the backend's fields")
                #expect(plain.header("Access-Control-Allow-Origin") == "*")

                let bad = try await engine.admin(
                    .PUT, "/apis/bad",
                    json: apiJSON(
                        "bad", path: "/bad", targets: [backends[0].port],
                        extra: #""response_headers":{"remove":["Content-Length","Transfer-Encoding","bad name"]}"#))
                #expect(bad.status == 400)
                for key in ["response_headers.remove[0]", "response_headers.remove[1]", "response_headers.remove[2]"] {
                    #expect(bad.text.contains(key), "\(key): \(bad.text)")
                }
            }
        }
    }
}

private struct RuleClaims: JWTPayload {
    var sub: String
    var exp: Double

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

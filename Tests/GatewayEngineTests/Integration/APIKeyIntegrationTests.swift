import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// API keys created, used and revoked through the admin API, across two engines.
    @Suite struct APIKeys {
        /// A created key is shown once and works on both engines; a wrong key gets 401, a key for another
        /// API 403; revoked through engine 1, it is refused by engine 2 within 1 s.
        @Test func keyWorksUntilRevokedAndRevocationReachesTheOtherEngineWithinOneSecond() async throws {
            try await withBackends(["keyed", "other"]) { backends in
                try await withEngines(count: 2) { cluster in
                    let (one, two) = (cluster.engines[0], cluster.engines[1])
                    try await cluster.putAPI(apiJSON("keyed", path: "/keyed", targets: [backends[0].port], extra: #""auth":{"mode":"api_key"}"#))
                    try await cluster.putAPI(apiJSON("other", path: "/other", targets: [backends[1].port], extra: #""auth":{"mode":"api_key"}"#))

                    let created = try await one.admin(.POST, "/keys", json: #"{"name":"partner","allowed_apis":["keyed"]}"#)
                    #expect(created.status == 201)
                    let key = try #require(created.string("key"))
                    #expect(key.hasPrefix("gk_"))
                    let record = try #require(created.json?["record"] as? [String: any Sendable])
                    let id = try #require(record["id"] as? String)
                    let listed = try await two.admin(.GET, "/keys")
                    #expect(listed.status == 200)
                    #expect(listed.text.contains(id))
                    #expect(!listed.text.contains(key), "the key itself is shown only once, at creation")

                    for engine in [one, two] {
                        let ok = try await engine.send(.GET, "/keyed/data", headers: [("X-API-Key", key)])
                        #expect(ok.status == 200)
                        #expect(ok.backend == "keyed")
                        #expect(try await engine.send(.GET, "/keyed/data", headers: [("Authorization", "Bearer \(key)")]).status == 200)
                    }
                    let wrong = try await one.send(.GET, "/keyed/data", headers: [("X-API-Key", "gk_" + String(repeating: "A", count: 43))])
                    #expect(wrong.status == 401)
                    #expect(wrong.header("WWW-Authenticate") == "Bearer")
                    #expect(wrong.string("request_id") == wrong.header("X-Request-ID"))
                    #expect(try await one.send(.GET, "/keyed/data").status == 401, "no key")
                    let forbidden = try await two.send(.GET, "/other/data", headers: [("X-API-Key", key)])
                    #expect(forbidden.status == 403)
                    #expect(forbidden.string("error") == "API key not allowed for this API")
                    #expect(backends[1].requestCount == 0)

                    // Engine 2 has just accepted the key (it may be cached there); revoke through engine 1.
                    #expect(try await two.send(.GET, "/keyed/data", headers: [("X-API-Key", key)]).status == 200)
                    let revoked = try await one.admin(.DELETE, "/keys/\(id)")
                    #expect(revoked.status == 200)
                    let start = ContinuousClock.now
                    try await waitUntil("engine 2 to refuse the revoked key", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/keyed/data", headers: [("X-API-Key", key)]).status == 401
                    }
                    #expect(ContinuousClock.now - start < .seconds(1))
                    #expect(try await one.send(.GET, "/keyed/data", headers: [("X-API-Key", key)]).status == 401)
                    #expect(try await one.admin(.DELETE, "/keys/\(id)").status == 404, "already revoked")
                }
            }
        }
    }
}

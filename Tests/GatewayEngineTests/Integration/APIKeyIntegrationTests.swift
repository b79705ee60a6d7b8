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

        /// A key's policy changed through engine 1 (`PATCH /keys/{id}`) is applied by engine 2 within 1 s,
        /// the key itself unchanged: another API allowed, then its own rate limit. Fields named `null` are
        /// cleared; unknown fields, bad values and a null name are refused by name; a revoked key stays
        /// revoked.
        @Test func keyPolicyChangeReachesTheOtherEngineWithinOneSecond() async throws {
            try await withBackends(["keyed", "other"]) { backends in
                try await withEngines(count: 2) { cluster in
                    let (one, two) = (cluster.engines[0], cluster.engines[1])
                    try await cluster.putAPI(apiJSON("keyed", path: "/keyed", targets: [backends[0].port], extra: #""auth":{"mode":"api_key"}"#))
                    try await cluster.putAPI(apiJSON("other", path: "/other", targets: [backends[1].port], extra: #""auth":{"mode":"api_key"}"#))
                    let (key, id) = try await cluster.createKey(#"{"name":"partner","allowed_apis":["keyed"],"expires_at":"2100-01-01T00:00:00Z"}"#)
                    #expect(try await two.send(.GET, "/other/x", headers: [("X-API-Key", key)]).status == 403, "cached on engine 2 now")

                    let changed = try await one.admin(.PATCH, "/keys/\(id)", json: #"{"allowed_apis":["keyed","other"],"name":"partner-2"}"#)
                    #expect(changed.status == 200, "\(changed)")
                    let start = ContinuousClock.now
                    try await waitUntil("engine 2 to let the key call the other API", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/other/x", headers: [("X-API-Key", key)]).status == 200
                    }
                    #expect(ContinuousClock.now - start < .seconds(1))
                    let shown = try await two.admin(.GET, "/keys/\(id)")
                    #expect(shown.status == 200)
                    #expect(shown.string("name") == "partner-2")
                    #expect(shown.string("expires_at") == "2100-01-01T00:00:00Z", "fields not named stay")

                    // Its own rate limit: one call a minute, then 429 on either engine.
                    #expect(
                        try await one.admin(.PATCH, "/keys/\(id)", json: #"{"rate_limit":{"rate":1,"period_seconds":60,"burst":1}}"#).status == 200)
                    try await waitUntil("engine 2 to apply the key's rate limit", timeout: .seconds(2), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/keyed/x", headers: [("X-API-Key", key)]).status == 429
                    }
                    #expect(try await one.send(.GET, "/keyed/x", headers: [("X-API-Key", key)]).status == 429)
                    // null clears it, and the expiry.
                    let cleared = try await one.admin(.PATCH, "/keys/\(id)", json: #"{"rate_limit":null,"expires_at":null}"#)
                    #expect(cleared.status == 200)
                    let record = try #require(cleared.json?["record"] as? [String: any Sendable])
                    #expect(record["rate_limit"] == nil && record["expires_at"] == nil, "\(cleared)")
                    try await waitUntil("engine 2 to drop the key's rate limit", timeout: .seconds(2), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/keyed/x", headers: [("X-API-Key", key)]).status == 200
                    }

                    for (body, field) in [
                        (#"{"rate":5}"#, "rate: unknown field"), (#"{"name":null}"#, "name: null"), (#"{}"#, "nothing to change"),
                        (#"{"expires_at":"2001-01-01T00:00:00Z"}"#, "expires_at"), (#"{"allowed_apis":["Bad API"]}"#, "allowed_apis[0]"),
                        (#"{"quota":{"limit":0,"period_seconds":60}}"#, "quota"), ("[]", "JSON object"),
                    ] {
                        let refused = try await one.admin(.PATCH, "/keys/\(id)", json: body)
                        #expect(refused.status == 400, "\(body): \(refused)")
                        #expect(refused.string("error")?.contains(field) == true, "\(body): \(refused)")
                    }
                    #expect(try await one.send(.GET, "/keyed/x", headers: [("X-API-Key", key)]).status == 200, "a refused change changes nothing")

                    #expect(try await one.admin(.DELETE, "/keys/\(id)").status == 200)
                    #expect(try await one.admin(.PATCH, "/keys/\(id)", json: #"{"name":"back"}"#).status == 404, "revoked stays revoked")
                    #expect(try await two.admin(.GET, "/keys/\(id)").status == 404)
                    try await waitUntil("engine 2 to refuse the revoked key", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/keyed/x", headers: [("X-API-Key", key)]).status == 401
                    }
                }
            }
        }

        /// A key clients already hold (from another gateway) is imported: stored as its hash, never sent
        /// back, accepted by every engine like a generated one; importing it again is 409, a key too short
        /// or with spaces 400 without the key in the message, and a PATCH cannot change a key.
        @Test func anExistingKeyIsImported() async throws {
            try await withBackends(["keyed"]) { backends in
                try await withEngines(count: 2) { cluster in
                    let (one, two) = (cluster.engines[0], cluster.engines[1])
                    try await cluster.putAPI(apiJSON("keyed", path: "/keyed", targets: [backends[0].port], extra: #""auth":{"mode":"api_key"}"#))
                    let legacy = "tyk-5f2c0d1e9a8b7c6d5e4f3a2b1c0d9e8f"
                    let imported = try await one.admin(.POST, "/keys", json: #"{"name":"legacy partner","key":"\#(legacy)"}"#)
                    #expect(imported.status == 201, "\(imported)")
                    #expect(imported.json?["imported"] as? Bool == true)
                    #expect(!imported.text.contains(legacy), "an imported key is not sent back")
                    let id = try #require((imported.json?["record"] as? [String: any Sendable])?["id"] as? String)
                    for engine in [one, two] {
                        #expect(try await engine.send(.GET, "/keyed/x", headers: [("X-API-Key", legacy)]).status == 200)
                        #expect(try await engine.send(.GET, "/keyed/x", headers: [("Authorization", "Bearer \(legacy)")]).status == 200)
                    }
                    #expect(try await two.send(.GET, "/keyed/x", headers: [("X-API-Key", legacy + "x")]).status == 401)

                    let again = try await two.admin(.POST, "/keys", json: #"{"name":"twice","key":"\#(legacy)"}"#)
                    #expect(again.status == 409)
                    #expect(again.string("error")?.contains(id) == true, "\(again)")
                    for bad in ["short-key", "has a space in the middle of it"] {
                        let refused = try await one.admin(.POST, "/keys", json: #"{"name":"bad","key":"\#(bad)"}"#)
                        #expect(refused.status == 400, "\(refused)")
                        #expect(refused.string("error")?.hasPrefix("key:") == true && !refused.text.contains(bad), "\(refused)")
                    }
                    let change = try await one.admin(.PATCH, "/keys/\(id)", json: #"{"key":"another-key-0123456789"}"#)
                    #expect(change.status == 400)
                    #expect(change.string("error")?.hasPrefix("key: a key cannot be changed") == true)

                    #expect(try await one.admin(.DELETE, "/keys/\(id)").status == 200)
                    try await waitUntil("engine 2 to refuse the revoked imported key", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/keyed/x", headers: [("X-API-Key", legacy)]).status == 401
                    }
                }
            }
        }

        /// Backends do not get the API key: its header (or the `Authorization` field it came in) is removed,
        /// and `X-Gateway-Client-ID` names the key instead, replacing one the client sent; an
        /// `Authorization` field beside a key in its own header is the backend's and stays. With
        /// `forward_credentials` the key goes through.
        @Test func backendsGetTheClientIDNotTheKey() async throws {
            try await withBackends(["keyed", "forwarding"]) { backends in
                try await withEngines { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(apiJSON("keyed", path: "/keyed", targets: [backends[0].port], extra: #""auth":{"mode":"api_key"}"#))
                    try await cluster.putAPI(
                        apiJSON(
                            "forwarding", path: "/forwarding", targets: [backends[1].port],
                            extra: #""auth":{"mode":"api_key","forward_credentials":true}"#))
                    let (key, id) = try await cluster.createKey(#"{"name":"partner"}"#)
                    for backend in backends { backend.setRecording(true) }

                    let spoofed = [("X-API-Key", key), ("X-Gateway-Client-ID", "key:someone-else"), ("Authorization", "Basic YTpi")]
                    #expect(try await engine.send(.GET, "/keyed/a", headers: spoofed).status == 200)
                    #expect(try await engine.send(.GET, "/keyed/b", headers: [("Authorization", "Bearer \(key)")]).status == 200)
                    #expect(try await engine.send(.GET, "/forwarding/c", headers: [("X-API-Key", key)]).status == 200)

                    let seen = backends[0].seen
                    #expect(seen.count == 2)
                    for request in seen {
                        #expect(!request.headers.contains(name: "X-API-Key"), "\(request.uri): the key's header is removed")
                        #expect(request.headers[canonicalForm: "X-Gateway-Client-ID"] == ["key:\(id)"], "\(request.uri)")
                    }
                    #expect(seen.first?.headers.first(name: "Authorization") == "Basic YTpi", "the backend's own credential stays")
                    #expect(seen.last?.headers.contains(name: "Authorization") == false, "a key sent as a bearer token is removed")
                    let forwarded = try #require(backends[1].seen.first)
                    #expect(forwarded.headers.first(name: "X-API-Key") == key)
                    #expect(forwarded.headers.first(name: "X-Gateway-Client-ID") == "key:\(id)")
                }
            }
        }

        /// A client cannot send its own `X-Gateway-Client-ID`: the fronts drop it, over HTTP/1.1 and HTTP/2,
        /// on keyless APIs too, so backends can believe the field wherever it appears.
        @Test func clientSentClientIDNeverReachesBackends() async throws {
            try await withBackends(["open"]) { backends in
                try await withEngines { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(apiJSON("open", path: "/open", targets: [backends[0].port]))
                    backends[0].setRecording(true)
                    #expect(try await engine.send(.GET, "/open/a", headers: [("X-Gateway-Client-ID", "key:admin")]).status == 200)
                    let h2 = try await runCurl([
                        "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--http2-prior-knowledge",
                        "-H", "x-gateway-client-id: key:admin", "http://127.0.0.1:\(engine.port)/open/b",
                    ])
                    #expect(h2.output == "200 2", "\(h2)")
                    let seen = backends[0].seen
                    #expect(seen.count == 2)
                    for request in seen {
                        #expect(!request.headers.contains(name: "X-Gateway-Client-ID"), "\(request.uri): \(request.headers)")
                    }
                }
            }
        }
    }
}

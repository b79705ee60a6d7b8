import Foundation
import GatewayTesting
import JWTKit
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

/// Claims for the tokens these tests sign.
fileprivate struct Claims: JWTPayload {
    var sub: String?
    var client_id: String?
    var exp: Double?
    var iss: String?
    var aud: String?
    var scope: String?
    var roles: [String]?
    var tenant_id: Int?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension EngineIntegration {
    /// APIs protected by JWT (HS256) through the whole engine.
    @Suite struct JWT {
        static let secret = "integration-secret-0123456789abcdef"

        static func definition(backend: Int) -> String {
            apiJSON(
                "jwtapi", path: "/jwt", targets: [backend],
                extra: """
                    "auth":{"mode":"jwt","jwt":{"keys":[{"algorithm":"HS256","secret":"\(secret)"}],"identity_claim":"client_id","leeway_seconds":0}},
                    "rate_limit":{"rate":1,"period_seconds":60,"burst":2}
                    """)
        }

        fileprivate static func token(_ claims: Claims, secret: String = secret) async throws -> String {
            try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).sign(claims)
        }

        static var now: Double { Date().timeIntervalSince1970 }

        /// A valid HS256 token is accepted, and its identity claim is the client the rate limit counts:
        /// alice's third call is limited while bob still gets through; a token without the claim is 401.
        @Test func validTokenIsAcceptedAndItsIdentityClaimIsTheClient() async throws {
            try await withBackends(["protected"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(Self.definition(backend: backends[0].port))
                    let engine = cluster.first
                    let alice = try await Self.token(Claims(sub: "u1", client_id: "alice", exp: Self.now + 300))
                    let bob = try await Self.token(Claims(sub: "u1", client_id: "bob", exp: Self.now + 300))
                    let auth = { (token: String) in [("Authorization", "Bearer \(token)")] }

                    let first = try await engine.send(.GET, "/jwt/me", headers: auth(alice))
                    #expect(first.status == 200)
                    #expect(first.backend == "protected")
                    #expect(first.header("X-RateLimit-Remaining") == "1")
                    #expect(try await engine.send(.GET, "/jwt/me", headers: auth(alice)).status == 200)
                    #expect(try await engine.send(.GET, "/jwt/me", headers: auth(alice)).status == 429, "alice used her burst of 2")
                    let bobsCall = try await engine.send(.GET, "/jwt/me", headers: auth(bob))
                    #expect(bobsCall.status == 200, "the same subject with another client_id is another client")
                    #expect(bobsCall.header("X-RateLimit-Remaining") == "1")

                    let noIdentity = try await engine.send(
                        .GET, "/jwt/me", headers: auth(try await Self.token(Claims(sub: "u1", exp: Self.now + 300))))
                    #expect(noIdentity.status == 401)
                    #expect(noIdentity.string("error") == "invalid token: missing_identity")
                    #expect(backends[0].requestCount == 3)
                    // The token stays at the engine; the backend learns the client from X-Gateway-Client-ID.
                    backends[0].setRecording(true)
                    #expect(try await engine.send(.GET, "/jwt/me", headers: auth(bob)).status == 200)
                    let seen = try #require(backends[0].seen.last)
                    #expect(!seen.headers.contains(name: "Authorization"))
                    #expect(seen.headers.first(name: "X-Gateway-Client-ID") == "jwt:bob")
                }
            }
        }

        /// `required_scopes`: a good token without every scope gets 403 `insufficient_scope` with the
        /// scopes in `WWW-Authenticate` (RFC 6750 §3) and reaches no backend; a bad scope in a definition
        /// is refused by name.
        @Test func tokenWithoutRequiredScopesGets403() async throws {
            try await withBackends(["scoped"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(
                        apiJSON(
                            "scoped", path: "/scoped", targets: [backends[0].port],
                            extra: """
                                "auth":{"mode":"jwt","jwt":{"keys":[{"algorithm":"HS256","secret":"\(Self.secret)"}],"required_scopes":["orders:write"]}}
                                """))
                    let engine = cluster.first
                    let writer = try await Self.token(Claims(sub: "w", exp: Self.now + 300, scope: "orders:read orders:write"))
                    let reader = try await Self.token(Claims(sub: "r", exp: Self.now + 300, scope: "orders:read"))
                    #expect(try await engine.send(.POST, "/scoped/o", headers: [("Authorization", "Bearer \(writer)")], body: "{}").status == 200)
                    let refused = try await engine.send(.POST, "/scoped/o", headers: [("Authorization", "Bearer \(reader)")], body: "{}")
                    #expect(refused.status == 403)
                    #expect(refused.string("error") == "token lacks a required scope")
                    #expect(refused.string("request_id") != nil)
                    #expect(refused.header("WWW-Authenticate") == #"Bearer error="insufficient_scope", scope="orders:write""#)
                    #expect(backends[0].requestCount == 1)

                    let bad = try await engine.admin(
                        .PUT, "/apis/bad",
                        json: apiJSON(
                            "bad", path: "/bad", targets: [backends[0].port],
                            extra: """
                                "auth":{"mode":"jwt","jwt":{"keys":[{"algorithm":"HS256","secret":"\(Self.secret)"}],"required_scopes":["ok","two words"]}}
                                """))
                    #expect(bad.status == 400)
                    #expect(bad.text.contains("auth.jwt.required_scopes[1]"), "\(bad.text)")
                }
            }
        }

        /// `claims_to_headers`: the token's claims reach the backend as fields (an array joined with `,`, a
        /// number as written), and a client's fields of those names never do, even for a claim the token
        /// lacks; a reserved or doubly used field is refused by name.
        @Test func claimsReachTheBackendAsFieldsAndClientsCannotForgeThem() async throws {
            try await withBackends(["claims"]) { backends in
                try await withEngines { cluster in
                    let mapping = #"{"sub":"X-User-ID","roles":"X-User-Roles","tenant_id":"X-Tenant","email":"X-User-Email"}"#
                    try await cluster.putAPI(
                        apiJSON(
                            "claims", path: "/claims", targets: [backends[0].port],
                            extra: """
                                "auth":{"mode":"jwt","jwt":{"keys":[{"algorithm":"HS256","secret":"\(Self.secret)"}],"claims_to_headers":\(mapping)}}
                                """))
                    backends[0].setRecording(true)
                    let token = try await Self.token(Claims(sub: "alice", exp: Self.now + 300, roles: ["admin", "ops"], tenant_id: 42))
                    let response = try await cluster.first.send(
                        .GET, "/claims/x",
                        headers: [("Authorization", "Bearer \(token)"), ("X-User-ID", "mallory"), ("x-user-email", "mallory@evil.test")])
                    #expect(response.status == 200)
                    let seen = try #require(backends[0].seen.last)
                    #expect(seen.headers[canonicalForm: "X-User-ID"] == ["alice"])
                    #expect(seen.headers.first(name: "X-User-Roles") == "admin,ops")
                    #expect(seen.headers.first(name: "X-Tenant") == "42")
                    #expect(!seen.headers.contains(name: "X-User-Email"), "a claim the token lacks: the client's field is dropped, none sent")

                    let bad = try await cluster.first.admin(
                        .PUT, "/apis/bad",
                        json: apiJSON(
                            "bad", path: "/bad", targets: [backends[0].port],
                            extra: """
                                "auth":{"mode":"jwt","jwt":{"keys":[{"algorithm":"HS256","secret":"\(Self.secret)"}],"claims_to_headers":{"a":"Host","b":"X-Same","c":"x-same"}}}
                                """))
                    #expect(bad.status == 400)
                    #expect(bad.text.contains("auth.jwt.claims_to_headers.a") && bad.text.contains("auth.jwt.claims_to_headers.c"), "\(bad.text)")
                }
            }
        }

        /// An expired token, a token signed with another secret and a missing token all get 401 with
        /// `WWW-Authenticate`; the backend sees none of them.
        @Test func expiredWrongOrMissingTokenGets401() async throws {
            try await withBackends(["protected"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(Self.definition(backend: backends[0].port))
                    let engine = cluster.first
                    let expired = try await Self.token(Claims(client_id: "alice", exp: Self.now - 60))
                    let forged = try await Self.token(Claims(client_id: "alice", exp: Self.now + 300), secret: "another-secret-0123456789abcdefghij")
                    let cases: [(headers: [(String, String)], reason: String)] = [
                        ([("Authorization", "Bearer \(expired)")], "expired"),
                        ([("Authorization", "Bearer \(forged)")], "bad_signature"),
                        ([], "missing"),
                        ([("Authorization", "Basic YWxpY2U6c2VjcmV0")], "missing"),
                    ]
                    for (headers, reason) in cases {
                        let response = try await engine.send(.GET, "/jwt/me", headers: headers)
                        #expect(response.status == 401)
                        #expect(response.string("error") == "invalid token: \(reason)")
                        #expect(response.header("WWW-Authenticate") == "Bearer")
                    }
                    #expect(backends[0].requestCount == 0)
                }
            }
        }

        /// Keys from a JWK Set URL (a real HTTP server on loopback), with an issuer and an audience: while
        /// the set cannot be fetched a token gets 503 with a JSON body and request id, not 401; once it
        /// can, a token signed with the set's key and naming the issuer and audience is forwarded, and
        /// one naming another issuer or audience gets 401.
        @Test func keysFromAKeySetURLWithIssuerAndAudience() async throws {
            let jwks = try await TestHTTPBackend.start(name: "jwks")
            defer { Task { await jwks.stop() } }
            let key = ES256PrivateKey()
            let p = key.publicKey.parameters!
            jwks.setFixedBody(ByteBuffer(string: #"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","x":"\#(p.x)","y":"\#(p.y)"}]}"#))
            jwks.setStatus(.internalServerError)
            let auth =
                #""auth":{"mode":"jwt","jwt":{"jwks_url":"http://127.0.0.1:\#(jwks.port)/keys","issuer":"https://idp.test","audiences":["orders"]}}"#
            try await withBackends(["protected"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("jwksapi", path: "/jwks", targets: [backends[0].port], extra: auth))
                    let engine = cluster.first
                    let signer = await JWTKeyCollection().add(ecdsa: key)
                    func token(iss: String, aud: String) async throws -> [(String, String)] {
                        let claims = Claims(sub: "svc-1", exp: Self.now + 300, iss: iss, aud: aud)
                        return [("Authorization", "Bearer \(try await signer.sign(claims, kid: "k1"))")]
                    }
                    let good = try await token(iss: "https://idp.test", aud: "orders")

                    let unavailable = try await engine.send(.GET, "/jwks/me", headers: good)
                    #expect(unavailable.status == 503)
                    #expect(unavailable.string("error") == "authentication is temporarily unavailable")
                    #expect(unavailable.string("request_id")?.isEmpty == false)

                    jwks.setStatus(.ok)
                    try await waitUntil("the key set fetched", timeout: .seconds(10), interval: .milliseconds(100)) {
                        try await engine.send(.GET, "/jwks/me", headers: good).status == 200
                    }
                    let forwarded = backends[0].requestCount
                    for (iss, aud, reason) in [("https://other.test", "orders", "wrong_issuer"), ("https://idp.test", "billing", "wrong_audience")] {
                        let response = try await engine.send(.GET, "/jwks/me", headers: try await token(iss: iss, aud: aud))
                        #expect(response.status == 401)
                        #expect(response.string("error") == "invalid token: \(reason)")
                    }
                    #expect(backends[0].requestCount == forwarded, "refused tokens reach no backend")
                }
            }
        }
    }
}

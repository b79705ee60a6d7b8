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
    }
}

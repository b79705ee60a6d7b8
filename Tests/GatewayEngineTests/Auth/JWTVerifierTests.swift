import Foundation
import JWTKit
import Testing

@testable import GatewayEngine

/// Claims for signing test tokens; jwt-kit's own claim checks are not used by the verifier.
private struct TestClaims: JWTPayload {
    var sub: String?
    var exp: Double?
    var nbf: Double?
    var client_id: String?
    var iss: String?
    var aud: Audience?
    var scope: String?
    /// A string or an array, like `aud`.
    var scp: Audience?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// `aud` as one string or an array, as RFC 7519 allows.
private enum Audience: Codable {
    case one(String)
    case many([String])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {
            self = .one(one)
        } else {
            self = .many(try container.decode([String].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .one(let s): try container.encode(s)
        case .many(let a): try container.encode(a)
        }
    }
}

@Suite struct JWTVerifierTests {
    static let secret = "0123456789abcdef0123456789abcdef"
    let clock = ManualClock()

    private func hsSigner(_ secret: String = secret) async -> JWTKeyCollection {
        await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    }

    private func verifier(_ keys: [JWTSettings.Key], claim: String = "sub", leeway: Int = 30) -> JWTVerifier {
        JWTVerifier(settings: JWTSettings(keys: keys, identityClaim: claim, leewaySeconds: leeway), now: clock.dateSource)
    }

    private var now: Double { clock.date.timeIntervalSince1970 }

    @Test func acceptsAValidHS256Token() async throws {
        let token = try await hsSigner().sign(TestClaims(sub: "alice", exp: now + 60))
        let v = verifier([.init(algorithm: .hs256, secret: Self.secret)])
        let identity = try await v.verify(authorization: "Bearer \(token)").get()
        #expect(identity.clientID == "alice")
        #expect(identity.expiresAt.map { abs($0.timeIntervalSince1970 - (now + 60)) < 0.001 } == true)
        #expect(try await v.verify(authorization: "bearer  \(token) ").get().clientID == "alice")
    }

    /// Each way a token can fail is told apart, for metrics.
    @Test func classifiesFailures() async throws {
        let v = verifier([.init(algorithm: .hs256, secret: Self.secret)], leeway: 30)
        let signer = await hsSigner()
        func reason(_ header: String?) async -> JWTFailure? {
            if case .failure(let f) = await v.verify(authorization: header) { return f }
            return nil
        }
        #expect(await reason(nil) == .missing)
        #expect(await reason("Basic dXNlcjpwYXNz") == .missing)
        #expect(await reason("Bearer ") == .missing)
        #expect(await reason("Bearer not.a-token") == .malformed)
        #expect(await reason("Bearer a.b.c") == .malformed)
        let wrongKey = try await hsSigner("another-secret-another-secret-xx").sign(TestClaims(sub: "a", exp: now + 60))
        #expect(await reason("Bearer \(wrongKey)") == .badSignature)
        let good = try await signer.sign(TestClaims(sub: "a", exp: now + 60))
        var parts = good.split(separator: ".").map(String.init)
        parts[1] = Base64URL.encode(Array(#"{"sub":"mallory","exp":9999999999}"#.utf8))
        #expect(await reason("Bearer \(parts.joined(separator: "."))") == .badSignature, "a tampered payload fails")
        #expect(await reason("Bearer \(try await signer.sign(TestClaims(sub: "a", exp: now - 31)))") == .expired)
        #expect(await reason("Bearer \(try await signer.sign(TestClaims(sub: "a", exp: now - 29)))") == nil, "within leeway")
        #expect(await reason("Bearer \(try await signer.sign(TestClaims(sub: "a", nbf: now + 31)))") == .notYetValid)
        #expect(await reason("Bearer \(try await signer.sign(TestClaims(sub: "a", nbf: now + 29)))") == nil, "within leeway")
        #expect(await reason("Bearer \(try await signer.sign(TestClaims(client_id: "x")))") == .missingIdentity)
        // alg "none": unsigned tokens are never accepted.
        let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(#"{"sub":"a"}"#.utf8))
        #expect(await reason("Bearer \(header).\(payload).") == .unsupportedAlgorithm)
        #expect(await reason("Bearer \(header).\(payload)") == .malformed)
    }

    @Test func verifiesRS256WithAPEMPublicKey() async throws {
        let signer = await JWTKeyCollection().add(
            rsa: try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM), digestAlgorithm: .sha256)
        let token = try await signer.sign(TestClaims(exp: now + 60, client_id: "svc-7"))
        let v = verifier([.init(algorithm: .rs256, publicKeyPEM: TestKeys.rsaPublicPEM)], claim: "client_id")
        #expect(try await v.verify(token: token).get().clientID == "svc-7")
    }

    @Test func verifiesES256WithAPEMPublicKey() async throws {
        let key = ES256PrivateKey()
        let token = try await JWTKeyCollection().add(ecdsa: key).sign(TestClaims(sub: "bob", exp: now + 60))
        let v = verifier([.init(algorithm: .es256, publicKeyPEM: key.publicKey.pemRepresentation)])
        #expect(try await v.verify(token: token).get().clientID == "bob")
        let otherKey = ES256PrivateKey()
        let forged = try await JWTKeyCollection().add(ecdsa: otherKey).sign(TestClaims(sub: "bob", exp: now + 60))
        #expect(await v.verify(token: forged) == .failure(.badSignature))
    }

    /// Every algorithm the engine verifies, each with its kind of configured key: HS384/HS512 secrets,
    /// RSA PKCS#1 and PSS with SHA-256/384/512, ECDSA on P-384 and P-521, EdDSA with Ed25519. A key
    /// verifies its own algorithm only: an RS256 key does not make a PS256 token good.
    @Test func verifiesEveryAlgorithmWithItsKey() async throws {
        let rsa = try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM)
        let es384 = ES384PrivateKey()
        let es512 = ES512PrivateKey()
        let hs384 = String(repeating: "3", count: 48)
        let hs512 = String(repeating: "5", count: 64)
        let cases: [(JWTSettings.Key, JWTKeyCollection)] = [
            (.init(algorithm: .hs384, secret: hs384), await JWTKeyCollection().add(hmac: HMACKey(from: hs384), digestAlgorithm: .sha384)),
            (.init(algorithm: .hs512, secret: hs512), await JWTKeyCollection().add(hmac: HMACKey(from: hs512), digestAlgorithm: .sha512)),
            (.init(algorithm: .rs384, publicKeyPEM: TestKeys.rsaPublicPEM), await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha384)),
            (.init(algorithm: .rs512, publicKeyPEM: TestKeys.rsaPublicPEM), await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha512)),
            (.init(algorithm: .ps256, publicKeyPEM: TestKeys.rsaPublicPEM), await JWTKeyCollection().add(pss: rsa, digestAlgorithm: .sha256)),
            (.init(algorithm: .ps384, publicKeyPEM: TestKeys.rsaPublicPEM), await JWTKeyCollection().add(pss: rsa, digestAlgorithm: .sha384)),
            (.init(algorithm: .ps512, publicKeyPEM: TestKeys.rsaPublicPEM), await JWTKeyCollection().add(pss: rsa, digestAlgorithm: .sha512)),
            (.init(algorithm: .es384, publicKeyPEM: es384.publicKey.pemRepresentation), await JWTKeyCollection().add(ecdsa: es384)),
            (.init(algorithm: .es512, publicKeyPEM: es512.publicKey.pemRepresentation), await JWTKeyCollection().add(ecdsa: es512)),
            (
                .init(algorithm: .eddsa, publicKeyPEM: TestKeys.ed25519PublicPEM),
                await JWTKeyCollection().add(eddsa: try EdDSA.PrivateKey(pem: TestKeys.ed25519PrivatePEM))
            ),
        ]
        for (key, signer) in cases {
            #expect(JWTVerifier.keyProblem(key) == nil, "\(key.algorithm)")
            let token = try await signer.sign(TestClaims(sub: key.algorithm.rawValue, exp: now + 60))
            #expect(try await verifier([key]).verify(token: token).get().clientID == key.algorithm.rawValue)
        }
        let pssToken = try await JWTKeyCollection().add(pss: rsa, digestAlgorithm: .sha256).sign(TestClaims(sub: "a", exp: now + 60))
        #expect(
            await verifier([.init(algorithm: .rs256, publicKeyPEM: TestKeys.rsaPublicPEM)]).verify(token: pssToken) == .failure(.unsupportedAlgorithm)
        )
        // Keys that do not fit their algorithm are refused with what was expected.
        #expect(JWTVerifier.keyProblem(.init(algorithm: .hs384, secret: Self.secret))?.expected == "a shared secret of at least 48 bytes for HS384")
        #expect(
            JWTVerifier.keyProblem(.init(algorithm: .es384, publicKeyPEM: es512.publicKey.pemRepresentation))?.expected
                == "a P-384 EC public key in PEM")
        #expect(JWTVerifier.keyProblem(.init(algorithm: .eddsa, publicKeyPEM: TestKeys.rsaPublicPEM))?.expected == "an Ed25519 public key in PEM")
    }

    /// A token's `alg` must match a configured key: an HS256 token "signed" with the RSA public key
    /// (algorithm confusion) is refused, and a `kid` picks among keys of one algorithm.
    @Test func algorithmMustMatchAConfiguredKey() async throws {
        let rsOnly = verifier([.init(algorithm: .rs256, publicKeyPEM: TestKeys.rsaPublicPEM)])
        let confused = try await hsSigner(TestKeys.rsaPublicPEM).sign(TestClaims(sub: "a", exp: now + 60))
        #expect(await rsOnly.verify(token: confused) == .failure(.unsupportedAlgorithm))

        let otherSecret = String(repeating: "z", count: 32)
        let rotated = verifier([
            .init(algorithm: .hs256, kid: "old", secret: Self.secret), .init(algorithm: .hs256, kid: "new", secret: otherSecret),
        ])
        let newToken = try await hsSigner(otherSecret).sign(TestClaims(sub: "n", exp: now + 60), kid: "new")
        #expect(try await rotated.verify(token: newToken).get().clientID == "n")
        let unknownKid = try await hsSigner(otherSecret).sign(TestClaims(sub: "n", exp: now + 60), kid: "gone")
        #expect(await rotated.verify(token: unknownKid) == .failure(.unknownKey))
        let noKid = try await hsSigner().sign(TestClaims(sub: "o", exp: now + 60))
        #expect(try await rotated.verify(token: noKid).get().clientID == "o", "without a kid every key of the algorithm is tried")
    }

    /// With `issuer` and `audiences` set, `iss` must equal the issuer and `aud` (a string or an array)
    /// must name one of the audiences; a token lacking either is refused too.
    @Test func checksIssuerAndAudience() async throws {
        let settings = JWTSettings(
            keys: [.init(algorithm: .hs256, secret: Self.secret)], issuer: "https://idp.example", audiences: ["orders", "billing"])
        let v = JWTVerifier(settings: settings, now: clock.dateSource)
        let signer = await hsSigner()
        func outcome(iss: String?, aud: Audience?) async throws -> Result<JWTIdentity, JWTFailure> {
            await v.verify(token: try await signer.sign(TestClaims(sub: "a", exp: now + 60, iss: iss, aud: aud)))
        }
        #expect(try await outcome(iss: "https://idp.example", aud: .one("orders")).get().clientID == "a")
        #expect(try await outcome(iss: "https://idp.example", aud: .many(["other", "billing"])).get().clientID == "a")
        #expect(try await outcome(iss: "https://evil.example", aud: .one("orders")) == .failure(.wrongIssuer))
        #expect(try await outcome(iss: nil, aud: .one("orders")) == .failure(.wrongIssuer))
        #expect(try await outcome(iss: "https://idp.example", aud: .one("other")) == .failure(.wrongAudience))
        #expect(try await outcome(iss: "https://idp.example", aud: .many([])) == .failure(.wrongAudience))
        #expect(try await outcome(iss: "https://idp.example", aud: nil) == .failure(.wrongAudience))
        // Without them configured, neither claim is looked at.
        let open = verifier([.init(algorithm: .hs256, secret: Self.secret)])
        let any = try await signer.sign(TestClaims(sub: "b", exp: now + 60, iss: "whoever", aud: .one("whatever")))
        #expect(try await open.verify(token: any).get().clientID == "b")
    }

    /// With `required_scopes`, a token must grant each of them in `scope` (space-separated) or `scp` (an
    /// array or a string), the two together; a token granting fewer is good but insufficient (403).
    @Test func requiredScopesComeFromScopeOrScp() async throws {
        let settings = JWTSettings(keys: [.init(algorithm: .hs256, secret: Self.secret)], requiredScopes: ["orders:read", "orders:write"])
        let v = JWTVerifier(settings: settings, now: clock.dateSource)
        let signer = await hsSigner()
        func outcome(scope: String? = nil, scp: Audience? = nil) async throws -> Result<JWTIdentity, JWTFailure> {
            await v.verify(token: try await signer.sign(TestClaims(sub: "a", exp: now + 60, scope: scope, scp: scp)))
        }
        #expect(try await outcome(scope: "profile orders:write orders:read").get().clientID == "a")
        #expect(try await outcome(scp: .many(["orders:read", "orders:write"])).get().clientID == "a")
        #expect(try await outcome(scp: .one("orders:write orders:read")).get().clientID == "a")
        #expect(try await outcome(scope: "orders:read", scp: .many(["orders:write"])).get().clientID == "a")
        #expect(try await outcome(scope: "orders:read") == .failure(.insufficientScope))
        #expect(try await outcome(scope: "orders:read orders:writer") == .failure(.insufficientScope), "whole scopes, not prefixes")
        #expect(try await outcome() == .failure(.insufficientScope))
        // A bad signature is still a bad signature, scopes or not.
        let forged = try await hsSigner("another-secret-another-secret-xx").sign(
            TestClaims(sub: "a", exp: now + 60, scope: "orders:read orders:write"))
        #expect(await v.verify(token: forged) == .failure(.badSignature))
    }
}

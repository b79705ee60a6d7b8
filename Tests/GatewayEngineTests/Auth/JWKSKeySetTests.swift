import Foundation
import GatewayCore
import GatewayTesting
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

private struct SubjectClaims: JWTPayload {
    var sub: String
    var exp: Double

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// JSON Web Key Sets fetched over HTTP from a real server on loopback (`TestHTTPBackend` answering the
/// set as its body).
@Suite struct JWKSKeySetTests {
    /// One P-256 key as a JWK.
    static func ecJWK(_ key: ES256PrivateKey, kid: String, extra: String = "") -> String {
        let p = key.publicKey.parameters!
        return #"{"kty":"EC","crv":"P-256","kid":"\#(kid)","x":"\#(p.x)","y":"\#(p.y)"\#(extra)}"#
    }

    static func rsaJWK(kid: String, extra: String = "") throws -> String {
        let (n, e) = try Insecure.RSA.PublicKey(pem: TestKeys.rsaPublicPEM).getKeyPrimitives()
        return #"{"kty":"RSA","kid":"\#(kid)","n":"\#(Base64URL.encode(Array(n)))","e":"\#(Base64URL.encode(Array(e)))"\#(extra)}"#
    }

    /// Makes `backend` answer the set of `keys`; returns the document.
    @discardableResult
    static func serve(_ backend: TestHTTPBackend, _ keys: [String]) -> [UInt8] {
        let document = #"{"keys":[\#(keys.joined(separator: ","))]}"#
        backend.setFixedBody(ByteBuffer(string: document))
        return Array(document.utf8)
    }

    static func sign(_ key: ES256PrivateKey, kid: String, sub: String = "svc") async throws -> String {
        try await JWTKeyCollection().add(ecdsa: key).sign(
            SubjectClaims(sub: sub, exp: Date().timeIntervalSince1970 + 300), kid: JWKIdentifier(string: kid))
    }

    static func verifier(url: String, refreshSeconds: Int? = nil, client: JWKSClient) -> JWTVerifier {
        JWTVerifier(settings: JWTSettings(keys: [], jwksURL: url, jwksRefreshSeconds: refreshSeconds), jwksClient: client)
    }

    static func client(unknownKeyGap: Duration = .zero, retryGap: Duration = .zero) -> JWKSClient {
        var fetcher = JWKSFetcher.http(tls: nil, metrics: nil, logger: Logger(label: "jwks-test"))
        fetcher.unknownKeyGap = unknownKeyGap
        fetcher.retryGap = retryGap
        return JWKSClient(fetcher)
    }

    /// The set's EC and RSA signature keys verify tokens; keys for encryption, for another algorithm or
    /// of another type are left out; a token whose key is not in the set is refused.
    @Test func verifiesWithTheKeysOfTheSet() async throws {
        let backend = try await TestHTTPBackend.start(name: "jwks")
        defer { Task { await backend.stop() } }
        let ec = ES256PrivateKey()
        let unlisted = ES256PrivateKey()
        let document = Self.serve(
            backend,
            [
                Self.ecJWK(ec, kid: "ec-1", extra: #","use":"sig","alg":"ES256""#), try Self.rsaJWK(kid: "rsa-1"),
                Self.ecJWK(unlisted, kid: "enc-1", extra: #","use":"enc""#), Self.ecJWK(unlisted, kid: "384", extra: #","alg":"ES384""#),
                #"{"kty":"oct","kid":"h","k":"c2VjcmV0"}"#,
            ])
        let keys = try await JWKSKeySet.keys(fromJWKS: document)
        #expect(keys.map(\.settings.kid) == ["ec-1"] + Array(repeating: "rsa-1", count: 6))
        #expect(keys.map(\.settings.algorithm) == [.es256, .rs256, .rs384, .rs512, .ps256, .ps384, .ps512], "an RSA key naming no alg: each RSA one")

        let v = Self.verifier(url: "http://127.0.0.1:\(backend.port)/jwks.json", client: Self.client())
        #expect(try await v.verify(token: Self.sign(ec, kid: "ec-1", sub: "orders")).get().clientID == "orders")
        let rsaToken = try await JWTKeyCollection().add(rsa: try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM), digestAlgorithm: .sha256)
            .sign(SubjectClaims(sub: "billing", exp: Date().timeIntervalSince1970 + 300), kid: "rsa-1")
        #expect(try await v.verify(token: rsaToken).get().clientID == "billing")
        #expect(await v.verify(token: try Self.sign(unlisted, kid: "enc-1")) == .failure(.unknownKey), "an encryption key verifies nothing")
        #expect(await v.verify(token: try Self.sign(unlisted, kid: "384")) == .failure(.unknownKey))
        // HS256 is never accepted by a set's keys alone (no shared secrets from a URL).
        let hs = try await JWTKeyCollection().add(hmac: HMACKey(from: String(repeating: "s", count: 32)), digestAlgorithm: .sha256)
            .sign(SubjectClaims(sub: "x", exp: Date().timeIntervalSince1970 + 300))
        #expect(await v.verify(token: hs) == .failure(.unsupportedAlgorithm))
    }

    /// Keys of every kind the engine verifies: an RSA key without `alg` verifies each RSA algorithm
    /// (PKCS#1 and PSS), one naming its `alg` that one only; P-384 and P-521 keys ES384 and ES512; an
    /// Ed25519 key EdDSA.
    @Test func verifiesEveryKindOfKey() async throws {
        let backend = try await TestHTTPBackend.start(name: "jwks")
        defer { Task { await backend.stop() } }
        let p384 = ES384PrivateKey()
        let p521 = ES512PrivateKey()
        func ec(_ parameters: ECDSAParameters, crv: String, kid: String) -> String {
            #"{"kty":"EC","crv":"\#(crv)","kid":"\#(kid)","x":"\#(parameters.x)","y":"\#(parameters.y)"}"#
        }
        Self.serve(
            backend,
            [
                try Self.rsaJWK(kid: "rsa-any"), try Self.rsaJWK(kid: "rsa-rs256", extra: #","alg":"RS256""#),
                ec(p384.publicKey.parameters!, crv: "P-384", kid: "p384"), ec(p521.publicKey.parameters!, crv: "P-521", kid: "p521"),
                #"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"\#(TestKeys.ed25519X)"}"#,
            ])
        let v = Self.verifier(url: "http://127.0.0.1:\(backend.port)/jwks.json", client: Self.client(unknownKeyGap: .seconds(60)))
        let rsa = try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM)
        let exp = Date().timeIntervalSince1970 + 300
        let signed: [(String, JWTKeyCollection, String)] = [
            ("PS256 by rsa-any", await JWTKeyCollection().add(pss: rsa, digestAlgorithm: .sha256), "rsa-any"),
            ("RS512 by rsa-any", await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha512), "rsa-any"),
            ("RS256 by rsa-rs256", await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256), "rsa-rs256"),
            ("ES384", await JWTKeyCollection().add(ecdsa: p384), "p384"),
            ("ES512", await JWTKeyCollection().add(ecdsa: p521), "p521"),
            ("EdDSA", await JWTKeyCollection().add(eddsa: try EdDSA.PrivateKey(pem: TestKeys.ed25519PrivatePEM)), "ed"),
        ]
        for (what, signer, kid) in signed {
            let token = try await signer.sign(SubjectClaims(sub: what, exp: exp), kid: JWKIdentifier(string: kid))
            #expect(try await v.verify(token: token).get().clientID == what)
        }
        let pssForRS256Key = try await JWTKeyCollection().add(pss: rsa, digestAlgorithm: .sha256)
            .sign(SubjectClaims(sub: "x", exp: exp), kid: "rsa-rs256")
        #expect(await v.verify(token: pssForRS256Key) == .failure(.unknownKey), "a key naming RS256 verifies RS256 only")
    }

    /// Key rotation at the issuer: a token naming a `kid` the set lacks makes it refetch, and the new
    /// key verifies; within `unknownKeyGap` of the last fetch an unknown `kid` is refused without one.
    @Test func refetchesForAnUnknownKeyID() async throws {
        let backend = try await TestHTTPBackend.start(name: "jwks")
        defer { Task { await backend.stop() } }
        let old = ES256PrivateKey()
        let new = ES256PrivateKey()
        Self.serve(backend, [Self.ecJWK(old, kid: "old")])
        let url = "http://127.0.0.1:\(backend.port)/jwks.json"

        let v = Self.verifier(url: url, client: Self.client())
        #expect(try await v.verify(token: Self.sign(old, kid: "old")).get().clientID == "svc")
        let fetches = backend.requestCount
        Self.serve(backend, [Self.ecJWK(old, kid: "old"), Self.ecJWK(new, kid: "new")])
        #expect(try await v.verify(token: Self.sign(new, kid: "new")).get().clientID == "svc")
        #expect(backend.requestCount == fetches + 1, "one refetch for the new kid")

        let patient = Self.verifier(url: url, client: Self.client(unknownKeyGap: .seconds(60)))
        Self.serve(backend, [Self.ecJWK(old, kid: "old")])
        #expect(try await patient.verify(token: Self.sign(old, kid: "old")).get().clientID == "svc")
        Self.serve(backend, [Self.ecJWK(new, kid: "new")])
        let before = backend.requestCount
        #expect(await patient.verify(token: try Self.sign(new, kid: "new")) == .failure(.unknownKey))
        #expect(backend.requestCount == before, "no refetch within the gap")
    }

    /// Before any set was fetched, a token gets `keys_unavailable` (503 from the engine, not 401); once the
    /// URL answers, tokens verify; a later failing fetch keeps the set in hand.
    @Test func anUnreachableSetIsUnavailableNotUnauthorized() async throws {
        let backend = try await TestHTTPBackend.start(name: "jwks")
        defer { Task { await backend.stop() } }
        let key = ES256PrivateKey()
        Self.serve(backend, [Self.ecJWK(key, kid: "k")])
        backend.setStatus(.internalServerError)
        // refreshSeconds 0: every token finds the set old and starts a refresh.
        let v = Self.verifier(url: "http://127.0.0.1:\(backend.port)/jwks.json", refreshSeconds: 0, client: Self.client())
        let token = try await Self.sign(key, kid: "k")
        #expect(await v.verify(token: token) == .failure(.keysUnavailable))

        backend.setStatus(.ok)
        #expect(try await v.verify(token: token).get().clientID == "svc")

        backend.setStatus(.serviceUnavailable)
        let failing = backend.requestCount
        for _ in 0..<3 {
            #expect(try await v.verify(token: token).get().clientID == "svc", "the set in hand is kept")
        }
        try await waitUntil("a refresh tried", timeout: .seconds(5), interval: .milliseconds(20)) { backend.requestCount > failing }

        let unreachable = Self.verifier(url: "http://127.0.0.1:\(try await LoopbackPort.free())/jwks.json", client: Self.client())
        #expect(await unreachable.verify(token: token) == .failure(.keysUnavailable))
    }

    /// A failed fetch is counted as `unreachable` when no usable answer came (no connection, a status
    /// other than 200) and as `invalid` when the answer is not a usable key set.
    @Test func failuresAreCountedByWhatWentWrong() async throws {
        #expect(JWKSKeySet.failureReason(JWKSError.status(503)) == "unreachable")
        #expect(JWKSKeySet.failureReason(AdminHTTPClient.ClientError.connectFailed("refused")) == "unreachable")
        #expect(JWKSKeySet.failureReason(AdminHTTPClient.ClientError.timeout(.seconds(3))) == "unreachable")
        #expect(JWKSKeySet.failureReason(JWKSError.noUsableKey) == "invalid")
        var notASet: (any Error)?
        do { _ = try await JWKSKeySet.keys(fromJWKS: Array("[1, 2]".utf8)) } catch { notASet = error }
        #expect(notASet.map(JWKSKeySet.failureReason) == "invalid")
        var noKeys: (any Error)?
        do { _ = try await JWKSKeySet.keys(fromJWKS: Array(#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.utf8)) } catch { noKeys = error }
        #expect(noKeys.map(JWKSKeySet.failureReason) == "invalid")
    }

    /// APIs naming the same URL share one set: the second verifier finds the keys in hand, no fetch more.
    @Test func apisNamingOneURLShareItsSet() async throws {
        let backend = try await TestHTTPBackend.start(name: "jwks")
        defer { Task { await backend.stop() } }
        let key = ES256PrivateKey()
        Self.serve(backend, [Self.ecJWK(key, kid: "k")])
        let url = "http://127.0.0.1:\(backend.port)/jwks.json"
        let client = Self.client()
        let first = Self.verifier(url: url, client: client)
        #expect(try await first.verify(token: Self.sign(key, kid: "k")).get().clientID == "svc")
        let fetches = backend.requestCount
        let second = JWTVerifier(
            settings: JWTSettings(keys: [], identityClaim: "sub", issuer: "someone", jwksURL: url), jwksClient: client)
        #expect(second.jwks === first.jwks)
        #expect(await second.verify(token: try Self.sign(key, kid: "k")) == .failure(.wrongIssuer), "its own checks, the shared keys")
        #expect(backend.requestCount == fetches)
        #expect(client.setsInUse == 1)
    }

    /// A set no verifier uses any more (its APIs deleted or pointed elsewhere) is let go, and a URL named
    /// again later is fetched afresh: sets do not pile up as definitions change.
    @Test func aSetNoAPIUsesIsLetGo() async throws {
        let backend = try await TestHTTPBackend.start(name: "jwks")
        defer { Task { await backend.stop() } }
        let key = ES256PrivateKey()
        Self.serve(backend, [Self.ecJWK(key, kid: "k")])
        let client = Self.client()
        var verifiers = (0..<3).map { Self.verifier(url: "http://127.0.0.1:\(backend.port)/jwks-\($0).json", client: client) }
        for v in verifiers { #expect(try await v.verify(token: Self.sign(key, kid: "k")).get().clientID == "svc") }
        #expect(client.setsInUse == 3)
        verifiers.removeLast(2)
        try await waitUntil("the unused sets were let go") { client.setsInUse == 1 }
        let fetches = backend.requestCount
        let again = Self.verifier(url: "http://127.0.0.1:\(backend.port)/jwks-2.json", client: client)
        #expect(try await again.verify(token: Self.sign(key, kid: "k")).get().clientID == "svc")
        #expect(backend.requestCount == fetches + 1, "a URL named again is fetched afresh")
        #expect(client.setsInUse == 2)
        withExtendedLifetime(verifiers) {}
    }
}

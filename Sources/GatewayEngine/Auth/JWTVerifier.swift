import Foundation
import GatewayCore
import JWTKit
import NIOConcurrencyHelpers

/// Why a bearer token was refused. `rawValue` is the metric label (`auth_failures{reason=…}`).
enum JWTFailure: String, Error, Sendable, Hashable, CaseIterable {
    /// No `Authorization: Bearer` token.
    case missing
    /// Not three base64url parts, or a header or payload that is not a JSON object.
    case malformed
    /// The token's `alg` is not one the API accepts (this includes `none`).
    case unsupportedAlgorithm = "unsupported_algorithm"
    /// No configured key matches the token's `alg` and `kid`.
    case unknownKey = "unknown_key"
    case badSignature = "bad_signature"
    /// `exp` is in the past, beyond the leeway.
    case expired
    /// `nbf` is in the future, beyond the leeway.
    case notYetValid = "not_yet_valid"
    /// The configured identity claim is absent or not a string or number.
    case missingIdentity = "missing_identity"
    /// `iss` is absent or not the configured issuer.
    case wrongIssuer = "wrong_issuer"
    /// `aud` is absent or names none of the configured audiences.
    case wrongAudience = "wrong_audience"
    /// The token is good but does not grant every scope the API requires: 403, not 401.
    case insufficientScope = "insufficient_scope"
    /// The API's keys come from a JSON Web Key Set that could not be fetched yet: the answer is 503, not
    /// 401, since the token may well be good.
    case keysUnavailable = "keys_unavailable"
}

/// A verified token's client.
struct JWTIdentity: Sendable, Hashable {
    /// The identity claim's value; the client id for rate limits and logs.
    var clientID: String
    /// `exp`, when the token has one.
    var expiresAt: Date?
    /// The API's `claims_to_headers` fields the token has, sorted by field name (empty without them).
    var claimFields: [ClaimField] = []

    struct ClaimField: Sendable, Hashable {
        var name: String
        var value: String
    }
}

/// Verifies bearer JWTs for one API with jwt-kit: HS256/384/512, RS256/384/512, PS256/384/512,
/// ES256/384/512 and EdDSA (Ed25519) with configured keys or the keys of a JSON Web Key Set
/// (``JWKSKeySet``), `exp` and `nbf` checked with leeway, `iss`, `aud` and scopes when the API names
/// them, a configured claim as the client identity. Failures are classified (see ``JWTFailure``) for
/// metrics and 401 (403 for missing scopes) answers.
///
/// The token's `alg` must be one of the configured keys' algorithms, so an RS256 public key can never be
/// used as an HMAC secret (algorithm confusion). Signature checks run on the caller's task: jwt-kit's
/// key collection (an actor) is asked once for each key's algorithm object, which is then used directly.
final class JWTVerifier: Sendable {
    let settings: JWTSettings
    private let now: @Sendable () -> Date
    /// The jwt-kit algorithm of each key, resolved on first use; nil entries failed to load.
    private let resolved = NIOLockedValueBox<[ResolvedKey]?>(nil)
    /// The keys of `settings.jwksURL`, when it is set and the engine fetches sets.
    let jwks: JWKSKeySet?

    struct ResolvedKey: Sendable {
        var settings: JWTSettings.Key
        var algorithm: (any JWTAlgorithm)?
    }

    /// - Parameters:
    ///   - settings: the API's keys, identity claim, leeway, issuer and audiences.
    ///   - jwksClient: where `settings.jwksURL`'s set is kept and fetched (shared with the APIs naming
    ///     the same URL; the first fetch starts when the set is new); without one, a set's keys are
    ///     never available.
    ///   - now: the wall clock, injectable for tests.
    init(settings: JWTSettings, jwksClient: JWKSClient? = nil, now: @escaping @Sendable () -> Date = { Date() }) {
        self.settings = settings
        self.now = now
        if let url = settings.jwksURL, let jwksClient {
            let refresh = Duration.seconds(settings.jwksRefreshSeconds ?? JWTSettings.defaultJWKSRefreshSeconds)
            jwks = jwksClient.keySet(url: url, refreshInterval: refresh)
        } else {
            jwks = nil
        }
    }

    /// Verifies the token in an `Authorization` header value (`Bearer <token>`).
    func verify(authorization: String?) async -> Result<JWTIdentity, JWTFailure> {
        guard let authorization else { return .failure(.missing) }
        let trimmed = authorization.trimmingWhitespace()
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else { return .failure(.missing) }
        let token = trimmed.dropFirst(7).trimmingWhitespace()
        guard !token.isEmpty else { return .failure(.missing) }
        return await verify(token: token)
    }

    /// Verifies a compact-serialised JWT.
    func verify(token: String) async -> Result<JWTIdentity, JWTFailure> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { return .failure(.malformed) }
        guard let headerBytes = Base64URL.decode(parts[0]), case .object(let header)? = try? JSONValue.parse(headerBytes),
            case .string(let alg)? = header["alg"]
        else { return .failure(.malformed) }
        var kid: String?
        if case .string(let k)? = header["kid"] { kid = k }

        guard let algorithm = JWTSettings.Algorithm(rawValue: alg), accepts(algorithm) else { return .failure(.unsupportedAlgorithm) }
        let candidates: [ResolvedKey]
        switch await keys(algorithm: algorithm, kid: kid) {
        case .success(let keys): candidates = keys
        case .failure(let failure): return .failure(failure)
        }
        guard let signature = Base64URL.decode(parts[2]), !signature.isEmpty else { return .failure(.malformed) }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let verified = candidates.contains { key in
            (try? key.algorithm?.verify(signature, signs: signingInput)) == true
        }
        guard verified else { return .failure(.badSignature) }

        guard let payloadBytes = Base64URL.decode(parts[1]), case .object(let claims)? = try? JSONValue.parse(payloadBytes)
        else { return .failure(.malformed) }
        let now = self.now().timeIntervalSince1970
        let leeway = Double(settings.leewaySeconds)
        var expiresAt: Date?
        switch claims["exp"] {
        case nil, .null?: break
        case .number(let exp)?:
            if now > exp + leeway { return .failure(.expired) }
            expiresAt = Date(timeIntervalSince1970: exp)
        default: return .failure(.malformed)
        }
        switch claims["nbf"] {
        case nil, .null?: break
        case .number(let nbf)?:
            if now + leeway < nbf { return .failure(.notYetValid) }
        default: return .failure(.malformed)
        }
        if let issuer = settings.issuer {
            guard case .string(let iss)? = claims["iss"], iss == issuer else { return .failure(.wrongIssuer) }
        }
        if let audiences = settings.audiences {
            let named: [String]
            switch claims["aud"] {
            case .string(let aud)?: named = [aud]
            case .array(let items)?:
                named = items.compactMap { item in
                    if case .string(let aud) = item { return aud }
                    return nil
                }
            default: named = []
            }
            guard named.contains(where: audiences.contains) else { return .failure(.wrongAudience) }
        }
        let identity: JWTIdentity
        switch claims[settings.identityClaim] {
        case .string(let s)? where !s.isEmpty: identity = JWTIdentity(clientID: s, expiresAt: expiresAt)
        case .number(let n)?: identity = JWTIdentity(clientID: JSONValue.number(n).shown, expiresAt: expiresAt)
        default: return .failure(.missingIdentity)
        }
        if let required = settings.requiredScopes {
            let granted = Self.grantedScopes(claims)
            guard required.allSatisfy(granted.contains) else { return .failure(.insufficientScope) }
        }
        var found = identity
        if let mapping = settings.claimsToHeaders {
            found.claimFields = mapping.sorted { $0.value.lowercased() < $1.value.lowercased() }.compactMap { claim, field in
                Self.fieldValue(claims[claim]).map { JWTIdentity.ClaimField(name: field, value: $0) }
            }
        }
        return .success(found)
    }

    /// A claim's value as a request field's: strings as they are, numbers and booleans as JSON writes
    /// them, arrays of those joined with `,`; nil for anything else (absent, null, objects).
    static func fieldValue(_ claim: JSONValue?) -> String? {
        func scalar(_ value: JSONValue) -> String? {
            switch value {
            case .string(let s): return s
            case .number, .bool: return value.shown
            default: return nil
            }
        }
        guard let claim else { return nil }
        if case .array(let items) = claim {
            let parts = items.compactMap(scalar)
            return parts.isEmpty ? nil : parts.joined(separator: ",")
        }
        return scalar(claim)
    }

    /// The scopes a token grants: its `scope` claim (a space-separated string) and its `scp` claim (an
    /// array of strings, or a space-separated string), together.
    static func grantedScopes(_ claims: [String: JSONValue]) -> Set<String> {
        var granted = Set<String>()
        for name in ["scope", "scp"] {
            switch claims[name] {
            case .string(let list)?:
                for scope in list.split(whereSeparator: { $0 == " " }) { granted.insert(String(scope)) }
            case .array(let items)?:
                for case .string(let scope) in items { granted.insert(scope) }
            default:
                break
            }
        }
        return granted
    }

    /// Whether some key could verify a token signed with `algorithm`: a configured one, or a set's.
    private func accepts(_ algorithm: JWTSettings.Algorithm) -> Bool {
        settings.keys.contains { $0.algorithm == algorithm } || keySetVerifies(algorithm)
    }

    /// Whether the API's key set (if it has one) may hold keys for `algorithm`: public keys, never a
    /// shared secret.
    private func keySetVerifies(_ algorithm: JWTSettings.Algorithm) -> Bool {
        settings.jwksURL != nil && algorithm.keyKind != .secret
    }

    /// The keys to try for a token's `alg` and `kid`: configured keys and the set's, the set refetched
    /// for a `kid` it lacks.
    private func keys(algorithm: JWTSettings.Algorithm, kid: String?) async -> Result<[ResolvedKey], JWTFailure> {
        let matches = { (key: ResolvedKey) in
            key.settings.algorithm == algorithm && (kid == nil || key.settings.kid == nil || key.settings.kid == kid)
        }
        var found = await configuredKeys().filter(matches)
        if keySetVerifies(algorithm) {
            guard let set = await jwks?.keys() else { return found.isEmpty ? .failure(.keysUnavailable) : .success(found) }
            found += set.filter(matches)
            if found.isEmpty, kid != nil, let fresh = await jwks?.keysAfterUnknownKey() {
                found = fresh.filter(matches)
            }
        }
        return found.isEmpty ? .failure(.unknownKey) : .success(found)
    }

    private func configuredKeys() async -> [ResolvedKey] {
        if let keys = resolved.withLockedValue({ $0 }) { return keys }
        var keys: [ResolvedKey] = []
        for key in settings.keys {
            keys.append(ResolvedKey(settings: key, algorithm: try? await Self.algorithm(for: key)))
        }
        resolved.withLockedValue { $0 = keys }
        return keys
    }

    /// Loads a key into a jwt-kit collection and returns its algorithm object.
    static func algorithm(for key: JWTSettings.Key) async throws -> any JWTAlgorithm {
        let collection = JWTKeyCollection()
        await (try loader(for: key))(collection)
        return try await collection.getKey()
    }

    /// Reads a configured key for its algorithm (throwing when it is not a key of that kind); the result
    /// adds it to a jwt-kit collection. The one place each algorithm's key type is named, for loading and
    /// for ``keyProblem(_:)``.
    private static func loader(for key: JWTSettings.Key) throws -> @Sendable (JWTKeyCollection) async -> Void {
        let pem = key.publicKeyPEM ?? ""
        let digest: DigestAlgorithm
        switch key.algorithm {
        case .hs384, .rs384, .ps384, .es384: digest = .sha384
        case .hs512, .rs512, .ps512, .es512: digest = .sha512
        default: digest = .sha256
        }
        switch key.algorithm {
        case .hs256, .hs384, .hs512:
            let secret = HMACKey(from: key.secret ?? "")
            return { _ = await $0.add(hmac: secret, digestAlgorithm: digest) }
        case .rs256, .rs384, .rs512:
            let publicKey = try Insecure.RSA.PublicKey(pem: pem)
            return { _ = await $0.add(rsa: publicKey, digestAlgorithm: digest) }
        case .ps256, .ps384, .ps512:
            let publicKey = try Insecure.RSA.PublicKey(pem: pem)
            return { _ = await $0.add(pss: publicKey, digestAlgorithm: digest) }
        case .es256:
            let publicKey = try ES256PublicKey(pem: pem)
            return { _ = await $0.add(ecdsa: publicKey) }
        case .es384:
            let publicKey = try ES384PublicKey(pem: pem)
            return { _ = await $0.add(ecdsa: publicKey) }
        case .es512:
            let publicKey = try ES512PublicKey(pem: pem)
            return { _ = await $0.add(ecdsa: publicKey) }
        case .eddsa:
            let publicKey = try EdDSA.PublicKey(pem: pem)
            return { _ = await $0.add(eddsa: publicKey) }
        }
    }

    /// What is wrong with a configured key, if anything: the field, the value to show, what was expected.
    static func keyProblem(_ key: JWTSettings.Key) -> (field: String, shown: String?, expected: String)? {
        let name = key.algorithm.rawValue
        switch key.algorithm.keyKind {
        case .secret:
            let least = key.algorithm == .hs256 ? 32 : key.algorithm == .hs384 ? 48 : 64
            guard let secret = key.secret, secret.utf8.count >= least else {
                return ("secret", key.secret.map { _ in "***" }, "a shared secret of at least \(least) bytes for \(name)")
            }
            if key.publicKeyPEM != nil { return ("public_key_pem", "…", "no public key for \(name) (use secret)") }
        case let kind:
            if key.secret != nil { return ("secret", "***", "no secret for \(name) (use public_key_pem)") }
            guard let pem = key.publicKeyPEM else {
                return ("public_key_pem", nil, "a PEM public key (-----BEGIN PUBLIC KEY-----) for \(name)")
            }
            if (try? loader(for: key)) == nil {
                let expected: String
                switch kind {
                case .ecP256: expected = "a P-256 EC public key in PEM"
                case .ecP384: expected = "a P-384 EC public key in PEM"
                case .ecP521: expected = "a P-521 EC public key in PEM"
                case .ed25519: expected = "an Ed25519 public key in PEM"
                default: expected = "an RSA public key in PEM"
                }
                return ("public_key_pem", String(pem.prefix(30)) + "…", expected)
            }
        }
        return nil
    }
}

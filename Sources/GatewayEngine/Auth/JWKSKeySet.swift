import Foundation
import GatewayCore
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// How the engine fetches JSON Web Key Sets (`auth.jwt.jwks_url`): the body of one GET, where failures
/// are told, and how often fetches may be made.
struct JWKSFetcher: Sendable {
    /// The body of a `200` answer to a GET of the URL; throws for anything else.
    var fetch: @Sendable (_ url: String) async throws -> [UInt8]
    var metrics: EngineMetrics?
    var logger: Logger
    /// Shortest time between two fetches for a `kid` the set lacks.
    var unknownKeyGap: Duration = .seconds(10)
    /// Shortest time between two fetches while no set was fetched yet, or to refresh an old one.
    var retryGap: Duration = .seconds(1)

    /// A fetcher over ``AdminHTTPClient``: `https://` verified with `tls` (the engine's `backends.*`
    /// trust), an answer within `timeout`, at most 1 MiB.
    static func http(tls: ClientTLSContextBox?, timeout: Duration = .seconds(3), metrics: EngineMetrics?, logger: Logger) -> JWKSFetcher {
        let client = AdminHTTPClient(timeout: timeout, maxResponseBytes: 1 << 20, tls: tls)
        return JWKSFetcher(
            fetch: { url in
                let response = try await client.request(.GET, url, headers: ["Accept": "application/json"])
                guard response.status == .ok else { throw JWKSError.status(Int(response.status.code)) }
                return Array(response.body.readableBytesView)
            }, metrics: metrics, logger: logger)
    }
}

/// The engine's JSON Web Key Sets, one per URL (and refresh interval): APIs naming the same issuer share
/// its keys and its fetches, and an API whose definition changed finds its keys in hand. Sets are
/// refreshed only when a token needs them, and let go once no API names them.
final class JWKSClient: Sendable {
    let fetcher: JWKSFetcher
    /// Held weakly: the routes' verifiers own the sets, so a set no API names any more (its APIs deleted
    /// or pointed elsewhere) goes with the last route table that used it, and a URL named again later is
    /// fetched afresh.
    private let sets = NIOLockedValueBox<[SetKey: Entry]>([:])

    private struct SetKey: Hashable {
        var url: String
        var refreshInterval: Duration
    }

    private struct Entry {
        weak var set: JWKSKeySet?
    }

    init(_ fetcher: JWKSFetcher) {
        self.fetcher = fetcher
    }

    /// Over HTTP (``JWKSFetcher/http(tls:timeout:metrics:logger:)``).
    static func http(tls: ClientTLSContextBox?, metrics: EngineMetrics?, logger: Logger) -> JWKSClient {
        JWKSClient(.http(tls: tls, metrics: metrics, logger: logger))
    }

    /// The key set of `url`, shared by every API naming it; a new one starts its first fetch.
    func keySet(url: String, refreshInterval: Duration) -> JWKSKeySet {
        let (set, isNew) = sets.withLockedValue { sets in
            let key = SetKey(url: url, refreshInterval: refreshInterval)
            if let existing = sets[key]?.set { return (existing, false) }
            sets = sets.filter { $0.value.set != nil }
            let made = JWKSKeySet(url: url, refreshInterval: refreshInterval, fetcher: fetcher)
            sets[key] = Entry(set: made)
            return (made, true)
        }
        if isNew { set.prefetch() }
        return set
    }

    /// How many sets are in use (by some route's verifier).
    var setsInUse: Int {
        sets.withLockedValue { sets in sets.values.count { $0.set != nil } }
    }
}

enum JWKSError: Error, CustomStringConvertible {
    case status(Int)
    case noUsableKey

    var description: String {
        switch self {
        case .status(let code): return "answered HTTP \(code), not 200"
        case .noUsableKey: return "no RSA, EC (P-256, P-384, P-521) or Ed25519 signature key in the set"
        }
    }
}

/// The keys of one JSON Web Key Set URL (every API naming it shares them), fetched and kept current.
///
/// The first token waits for the first fetch (a fetch also starts when the route is built); after that
/// tokens are checked against the keys in hand while a refresh runs in the background once they are
/// `refreshInterval` old. A token naming a `kid` the set lacks makes it refetch at once (key rotation
/// at the issuer), at most once per `unknownKeyGap` of the fetcher (10 s). One fetch runs at a time; a
/// failed fetch keeps the last good set, is logged and counted (`gc_engine_jwks_fetch_failures_total`),
/// and is retried no sooner than the fetcher's `retryGap` (1 s) later, so an unreachable issuer costs each
/// token at most one wait (the client's timeout, 3 s).
final class JWKSKeySet: Sendable {
    let url: String
    let refreshInterval: Duration
    private let fetcher: JWKSFetcher
    private let state = NIOLockedValueBox(State())
    private let clock = ContinuousClock()

    private struct State {
        var keys: [JWTVerifier.ResolvedKey]?
        var fetchedAt: ContinuousClock.Instant?
        var lastAttempt: ContinuousClock.Instant?
        var inflight: Task<[JWTVerifier.ResolvedKey]?, Never>?
    }

    init(url: String, refreshInterval: Duration, fetcher: JWKSFetcher) {
        self.url = url
        self.refreshInterval = refreshInterval
        self.fetcher = fetcher
    }

    /// Starts the first fetch without waiting for it.
    func prefetch() {
        _ = refresh(gap: fetcher.retryGap)
    }

    /// The keys in hand (refreshed in the background when old), or the first fetch's; nil when none
    /// could be fetched yet.
    func keys() async -> [JWTVerifier.ResolvedKey]? {
        let now = clock.now
        let (keys, stale) = state.withLockedValue { s in
            (s.keys, s.fetchedAt.map { now - $0 >= refreshInterval } ?? true)
        }
        if let keys {
            if stale { _ = refresh(gap: fetcher.retryGap) }
            return keys
        }
        // No fetch started: one began less than a gap ago, and may have finished since the read above.
        guard let task = refresh(gap: fetcher.retryGap) else { return state.withLockedValue { $0.keys } }
        return await task.value
    }

    /// For a token whose `kid` no key in hand has: the keys of a fetch made now, or nil when one was made
    /// less than `unknownKeyGap` ago (or fails).
    func keysAfterUnknownKey() async -> [JWTVerifier.ResolvedKey]? {
        guard let task = refresh(gap: fetcher.unknownKeyGap) else { return nil }
        return await task.value
    }

    /// The running fetch, or a new one unless the last began less than `gap` ago.
    private func refresh(gap: Duration) -> Task<[JWTVerifier.ResolvedKey]?, Never>? {
        state.withLockedValue { s in
            if let running = s.inflight { return running }
            // Read under the lock: an instant read before it could precede the last attempt's.
            let now = clock.now
            if let last = s.lastAttempt, now - last < gap { return nil }
            s.lastAttempt = now
            let task = Task { await self.fetch() }
            s.inflight = task
            return task
        }
    }

    private func fetch() async -> [JWTVerifier.ResolvedKey]? {
        var fetched: [JWTVerifier.ResolvedKey]?
        do {
            let body = try await fetcher.fetch(url)
            let keys = try await Self.keys(fromJWKS: body)
            fetched = keys
            fetcher.logger.debug("jwks fetched", metadata: ["jwks.url": "\(url)", "jwks.keys": "\(keys.count)"])
        } catch {
            fetcher.metrics?.count("jwks_fetch_failures", Self.failureReason(error))
            fetcher.logger.warning(
                "cannot fetch the JSON Web Key Set; keeping the keys in hand",
                metadata: ["jwks.url": "\(url)", "error": "\(error)"])
        }
        let now = clock.now
        return state.withLockedValue { s in
            s.inflight = nil
            if let fetched {
                s.keys = fetched
                s.fetchedAt = now
            }
            return fetched
        }
    }

    /// The `reason` a failed fetch is counted under: `invalid` when an answer came but is not a usable
    /// key set, `unreachable` for no connection, a timeout or a status other than 200.
    static func failureReason(_ error: any Error) -> String {
        switch error {
        case JWKSError.noUsableKey, is DecodingError: return "invalid"
        default: return "unreachable"
        }
    }

    /// The signature keys of a JWK Set document: RSA keys for RS256/384/512 and PS256/384/512, EC keys
    /// on P-256, P-384 and P-521 for ES256, ES384 and ES512, Ed25519 keys (`OKP`) for EdDSA. A key naming
    /// its `alg` verifies that one only (one naming an algorithm its kind cannot, `ES384` on a P-256 key,
    /// is left out), one naming none each its kind can. Keys for encryption (`"use": "enc"`), and keys of
    /// types the engine does not verify or cannot read, are left out; a set with none left is an error.
    static func keys(fromJWKS body: [UInt8]) async throws -> [JWTVerifier.ResolvedKey] {
        let set = try JSONDecoder().decode(LenientKeySet.self, from: Data(body))
        var keys: [JWTVerifier.ResolvedKey] = []
        for (i, entry) in set.keys.enumerated() {
            guard let jwk = entry.jwk, entry.use == nil || entry.use == "sig" else { continue }
            let kind: JWTSettings.Algorithm.KeyKind
            if jwk.keyType == .rsa {
                kind = .rsa
            } else if jwk.keyType == .ecdsa && jwk.curve == .ecdsa(.p256) {
                kind = .ecP256
            } else if jwk.keyType == .ecdsa && jwk.curve == .ecdsa(.p384) {
                kind = .ecP384
            } else if jwk.keyType == .ecdsa && jwk.curve == .ecdsa(.p521) {
                kind = .ecP521
            } else if jwk.keyType == .octetKeyPair && jwk.curve == .eddsa(.ed25519) {
                kind = .ed25519
            } else {
                continue
            }
            // A key naming its `alg` verifies that algorithm only; one naming none, each its kind allows.
            var algorithms = JWTSettings.Algorithm.verified(by: kind)
            if let declared = jwk.algorithm {
                algorithms = algorithms.filter { $0.rawValue == declared.rawValue }
            }
            var named = jwk
            if named.keyIdentifier == nil { named.keyIdentifier = JWKIdentifier(string: "#\(i)") }
            for algorithm in algorithms {
                // A collection per algorithm: jwt-kit keeps the first signer it made for a key without `alg`.
                let collection = JWTKeyCollection()
                guard (try? await collection.add(jwk: named)) != nil,
                    let verifier = try? await collection.getKey(for: named.keyIdentifier, alg: algorithm.rawValue),
                    verifier.name == algorithm.rawValue
                else { continue }
                keys.append(
                    JWTVerifier.ResolvedKey(
                        settings: JWTSettings.Key(algorithm: algorithm, kid: jwk.keyIdentifier?.string), algorithm: verifier))
            }
        }
        guard !keys.isEmpty else { throw JWKSError.noUsableKey }
        return keys
    }
}

/// A JWK Set read key by key: one key of a type jwt-kit does not know (`oct`, say) leaves that key out
/// instead of failing the whole set.
private struct LenientKeySet: Decodable {
    var keys: [LenientKey]

    struct LenientKey: Decodable {
        var jwk: JWK?
        /// `sig` or `enc` (RFC 7517 §4.2); jwt-kit's `JWK` does not keep it.
        var use: String?

        private enum CodingKeys: String, CodingKey { case use }

        init(from decoder: any Decoder) throws {
            jwk = try? JWK(from: decoder)
            use = try? decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .use)
        }
    }
}

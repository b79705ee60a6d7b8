import Crypto
import Foundation
import GatewayCore
import Logging
import NIOConcurrencyHelpers

/// API keys in Redis, stored only as SHA-256 hashes, with a short-lived local cache for lookups.
///
/// A key is `gk_` followed by 32 random bytes in base64url; it is shown once, when created. Redis holds
/// `<prefix>:key:<sha256 hex>` → policy JSON (expiring with the key), and an index hash
/// `<prefix>:keys` (key id → record and hash) for listing and revoking by id. The key id is the first 12
/// hex digits of the hash.
///
/// Revocation publishes `{"type":"key_revoked","hash":…}` (the SHA-256 is no secret: it cannot be turned
/// back into the key). It reaches every engine within 1 s even if that message is lost: a cached
/// answer lives at most ``positiveTTL`` (≤ 1 s) counted from when its Redis read was *sent*, and a read
/// that started before an invalidation is not cached. The event only makes it sooner.
///
/// When Redis cannot be reached, lookups that miss the cache throw ``APIKeyLookupError/unavailable(_:)``
/// (the HTTP layer answers 503, never 401/403).
final class APIKeyStore: Sendable {
    static let keyPrefix = "gk_"
    /// Hex digits of the hash that form the key id.
    static let idLength = 12

    let redis: RedisClient
    let keys: EngineKeys
    let positiveTTL: Duration
    let negativeTTL: Duration
    private let maxCachedKeys: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let wallClock: @Sendable () -> Date
    private let cache = NIOLockedValueBox(Cache())
    private let logger: Logger

    private struct Cache {
        var entries: [String: Entry] = [:]
        /// Bumped by every invalidation; a read that began under an older generation is not cached.
        var generation: UInt64 = 0
        var hits = 0
        var misses = 0
    }

    private struct Entry {
        /// nil caches "no such key".
        var record: APIKeyRecord?
        var expires: ContinuousClock.Instant
    }

    /// - Parameters:
    ///   - positiveTTL: how long a found key is cached; at most 1 s so revocation is honoured in time.
    ///   - negativeTTL: how long "no such key" is cached.
    ///   - maxCachedKeys: cache bound.
    ///   - now: monotonic clock for the cache; `wallClock` for key expiry.
    init(
        redis: RedisClient, keys: EngineKeys, positiveTTL: Duration = .milliseconds(500),
        negativeTTL: Duration = .milliseconds(500), maxCachedKeys: Int = 100_000,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
        wallClock: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) {
        precondition(positiveTTL <= .seconds(1), "a cached key must not outlive a revocation by more than 1 s")
        self.redis = redis
        self.keys = keys
        self.positiveTTL = positiveTTL
        self.negativeTTL = min(negativeTTL, .seconds(1))
        self.maxCachedKeys = maxCachedKeys
        self.now = now
        self.wallClock = wallClock
        self.logger = logger
    }

    /// Why a create was refused.
    enum WriteError: Error, Sendable, CustomStringConvertible {
        case invalid([ConfigProblem])
        /// An imported key that is stored already.
        case conflict(String)
        case redis(RedisError)

        var description: String {
            switch self {
            case .invalid(let problems): return problems.map(\.description).joined(separator: "; ")
            case .conflict(let message): return message
            case .redis(let error): return error.description
            }
        }
    }

    private struct IndexEntry: Codable {
        var hash: String
        var record: APIKeyRecord
    }

    // MARK: Admin

    /// Creates a key and returns it in plain text (the only time it is available) with its record. With
    /// ``APIKeyRequest/importedKey`` that key is stored instead of a new one (clients moving from another
    /// gateway keep theirs); importing a key that exists is a ``WriteError/conflict(_:)``.
    func create(_ request: APIKeyRequest) async throws(WriteError) -> (key: String, record: APIKeyRecord) {
        let createdAt = wallClock()
        var problems = Self.problems(request, now: createdAt, checkExpiry: true)
        if let imported = request.importedKey, !Self.isPresentable(imported) {
            // Never the key itself in an error.
            problems.append(
                ConfigProblem(
                    key: "key", value: "(\(imported.utf8.count) bytes)",
                    expected: "an existing key of \(Self.importedLength.lowerBound)-\(Self.importedLength.upperBound) visible ASCII characters"))
        }
        if !problems.isEmpty { throw .invalid(problems) }
        // Records keep whole seconds (ISO 8601 without fractions), so round here and the record handed
        // back equals the one read later. An expiry is rounded up, never cutting a key's life short.
        let created = Date(timeIntervalSince1970: createdAt.timeIntervalSince1970.rounded(.down))
        let expires = request.expiresAt.map(Self.roundedExpiry)

        for _ in 0..<(request.importedKey == nil ? 3 : 1) {
            let key = request.importedKey ?? Self.generateKey()
            let hash = Self.hash(of: key)
            let record = APIKeyRecord(
                id: String(hash.prefix(Self.idLength)), name: request.name, createdAt: created,
                expiresAt: expires, allowedAPIs: request.allowedAPIs, rateLimit: request.rateLimit,
                quota: request.quota)
            let recordJSON = Self.json(record)
            let entryJSON = Self.json(IndexEntry(hash: hash, record: record))
            do {
                // The index first: a key that exists is always listed, so it can always be revoked.
                let claimed = try await redis.send("HSETNX", .string(keys.apiKeyIndex), .string(record.id), .string(entryJSON))
                guard claimed.int == 1 else { continue }
                if let expires {
                    let ms = Int((expires.timeIntervalSince1970 * 1000).rounded(.up))
                    try await redis.send("SET", .string(keys.apiKey(hash: hash)), .string(recordJSON), "PXAT", .int(ms))
                } else {
                    try await redis.send("SET", .string(keys.apiKey(hash: hash)), .string(recordJSON))
                }
                try await redis.publish(keys.events, EngineEvent.keyCreated(hashPrefix: hash).message)
            } catch {
                throw .redis(error)
            }
            invalidate(hashPrefix: hash)
            return (key, record)
        }
        if let imported = request.importedKey { throw .conflict("that key exists already (id \(Self.hash(of: imported).prefix(Self.idLength)))") }
        throw .redis(.unexpectedReply(command: "HSETNX", reply: "key id collided three times"))
    }

    /// What is wrong with a key's policy; the expiry is checked against `now` when `checkExpiry`.
    private static func problems(_ request: APIKeyRequest, now: Date, checkExpiry: Bool) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if request.name.isEmpty || request.name.count > 200 {
            problems.append(ConfigProblem(key: "name", value: request.name, expected: "a name of 1-200 characters"))
        }
        if checkExpiry, let expiresAt = request.expiresAt, expiresAt <= now {
            problems.append(ConfigProblem(key: "expires_at", value: "\(expiresAt)", expected: "a time in the future"))
        }
        for (i, api) in request.allowedAPIs.enumerated() where !APIDefinition.isValidID(api) {
            problems.append(ConfigProblem(key: "allowed_apis[\(i)]", value: api, expected: "an API id"))
        }
        if let rate = request.rateLimit, rate.rate < 1 || rate.periodSeconds < 1 || rate.burst < 1 {
            problems.append(
                ConfigProblem(
                    key: "rate_limit", value: "\(rate.rate)/\(rate.periodSeconds)s burst \(rate.burst)",
                    expected: "rate, period_seconds and burst of at least 1"))
        }
        if let quota = request.quota, quota.limit < 1 || quota.periodSeconds < 1 {
            problems.append(
                ConfigProblem(key: "quota", value: "\(quota.limit)/\(quota.periodSeconds)s", expected: "limit and period_seconds of at least 1"))
        }
        return problems
    }

    private static func roundedExpiry(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.up))
    }

    /// The record of the key with this id; nil if there is none (never created or revoked).
    func record(id: String) async throws(RedisError) -> APIKeyRecord? {
        guard let json = try await redis.send("HGET", .string(keys.apiKeyIndex), .string(id)).string else { return nil }
        return Self.decode(IndexEntry.self, json)?.record
    }

    /// Changes the policy of the key with this id (its name, expiry, APIs, rate limit, quota; never the
    /// key, its id or its creation time) on every engine within a second, like a revocation: the record
    /// is rewritten, cached answers for it are dropped here and, through a `key_updated` event,
    /// elsewhere (a lost event only delays it to the cache's 1 s). Returns nil when there is no such key,
    /// or its record is gone (revoked, or expired). A revocation racing an update always wins: the record
    /// is only overwritten while it exists (`SET … XX`), and the listing only while the key is listed.
    func update(id: String, _ patch: APIKeyPatch) async throws(WriteError) -> APIKeyRecord? {
        let entry: IndexEntry
        do {
            guard let json = try await redis.send("HGET", .string(keys.apiKeyIndex), .string(id)).string,
                let decoded = Self.decode(IndexEntry.self, json)
            else { return nil }
            entry = decoded
        } catch {
            throw .redis(error)
        }
        var request = APIKeyRequest(
            name: patch.name ?? entry.record.name, expiresAt: entry.record.expiresAt, allowedAPIs: patch.allowedAPIs ?? entry.record.allowedAPIs,
            rateLimit: entry.record.rateLimit, quota: entry.record.quota)
        if let expiresAt = patch.expiresAt { request.expiresAt = expiresAt }
        if let rateLimit = patch.rateLimit { request.rateLimit = rateLimit }
        if let quota = patch.quota { request.quota = quota }
        let problems = Self.problems(request, now: wallClock(), checkExpiry: patch.expiresAt != nil)
        if !problems.isEmpty { throw .invalid(problems) }

        var record = entry.record
        record.name = request.name
        record.expiresAt = request.expiresAt.map(Self.roundedExpiry)
        record.allowedAPIs = request.allowedAPIs
        record.rateLimit = request.rateLimit
        record.quota = request.quota
        do {
            var set: [RedisArgument] = [.string(keys.apiKey(hash: entry.hash)), .string(Self.json(record))]
            if let expires = record.expiresAt { set += ["PXAT", .int(Int((expires.timeIntervalSince1970 * 1000).rounded(.up)))] }
            set.append("XX")
            guard try await redis.send(RedisCommand("SET", arguments: set)).string == "OK" else { return nil }
            let listed = try await redis.evalScript(
                Self.relistScript, keys: [keys.apiKeyIndex],
                arguments: [.string(id), .string(Self.json(IndexEntry(hash: entry.hash, record: record)))])
            invalidate(hashPrefix: entry.hash)
            try await redis.publish(keys.events, EngineEvent.keyUpdated(hashPrefix: entry.hash).message)
            return listed.int == 1 ? record : nil
        } catch {
            throw .redis(error)
        }
    }

    /// KEYS: the key index. ARGV: key id, index entry. Rewrites the entry only while the key is listed
    /// (a revocation removes it). Returns 1 if rewritten.
    static let relistScript = RedisScript(
        """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
          return 0
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        return 1
        """)

    /// Every key's record, sorted by creation time (never the key or its hash).
    func list() async throws(RedisError) -> [APIKeyRecord] {
        let entries = try await redis.hgetall(keys.apiKeyIndex)
        return entries.values.compactMap { Self.decode(IndexEntry.self, $0)?.record }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    /// Revokes the key with this id everywhere; returns false if there is no such key.
    @discardableResult
    func revoke(id: String) async throws(RedisError) -> Bool {
        guard let json = try await redis.send("HGET", .string(keys.apiKeyIndex), .string(id)).string else { return false }
        guard let entry = Self.decode(IndexEntry.self, json) else {
            try await redis.send("HDEL", .string(keys.apiKeyIndex), .string(id))
            return true
        }
        // The record first: from this moment no engine that misses its cache accepts the key.
        try await redis.delete(keys.apiKey(hash: entry.hash))
        try await redis.send("HDEL", .string(keys.apiKeyIndex), .string(id))
        invalidate(hashPrefix: entry.hash)
        try await redis.publish(keys.events, EngineEvent.keyRevoked(hashPrefix: entry.hash).message)
        return true
    }

    // MARK: Data plane

    /// Looks up a presented key.
    func lookup(_ presented: String) async throws(APIKeyLookupError) -> APIKeyLookup {
        guard Self.isPresentable(presented) else { return .unknown }
        let hash = Self.hash(of: presented)
        let started = now()
        let cached = cache.withLockedValue { cache -> (hit: Entry?, generation: UInt64) in
            if let entry = cache.entries[hash] {
                if entry.expires > started {
                    cache.hits += 1
                    return (entry, cache.generation)
                }
                cache.entries[hash] = nil
            }
            cache.misses += 1
            return (nil, cache.generation)
        }
        if let hit = cached.hit { return evaluate(hit.record) }

        let reply: RedisValue
        do {
            reply = try await redis.send("GET", .string(keys.apiKey(hash: hash)))
        } catch {
            throw .unavailable(error)
        }
        var record: APIKeyRecord?
        if let json = reply.string {
            guard let decoded = Self.decode(APIKeyRecord.self, json) else {
                throw .corruptRecord(keyID: String(hash.prefix(Self.idLength)))
            }
            record = decoded
        }
        let ttl = record == nil ? negativeTTL : positiveTTL
        cache.withLockedValue { cache in
            guard cache.generation == cached.generation else { return }
            if cache.entries.count >= maxCachedKeys {
                let now = self.now()
                cache.entries = cache.entries.filter { $0.value.expires > now }
                if cache.entries.count >= maxCachedKeys { cache.entries.removeAll(keepingCapacity: true) }
            }
            cache.entries[hash] = Entry(record: record, expires: started.advanced(by: ttl))
        }
        return evaluate(record)
    }

    /// Takes an event from ``EngineEvents``.
    func handle(_ event: EngineEvent) {
        switch event {
        case .keyRevoked(let prefix), .keyCreated(let prefix), .keyUpdated(let prefix):
            invalidate(hashPrefix: prefix)
        case .resync:
            cache.withLockedValue { cache in
                cache.entries.removeAll()
                cache.generation &+= 1
            }
        case .apisChanged, .other:
            break
        }
    }

    /// Cache hits and misses, for metrics.
    var cacheStats: (hits: Int, misses: Int, size: Int) {
        cache.withLockedValue { ($0.hits, $0.misses, $0.entries.count) }
    }

    private func invalidate(hashPrefix: String) {
        cache.withLockedValue { cache in
            if hashPrefix.utf8.count == 64 {
                cache.entries[hashPrefix] = nil
            } else {
                cache.entries = cache.entries.filter { !$0.key.hasPrefix(hashPrefix) }
            }
            cache.generation &+= 1
        }
    }

    private func evaluate(_ record: APIKeyRecord?) -> APIKeyLookup {
        guard let record else { return .unknown }
        return record.isExpired(at: wallClock()) ? .expired(record) : .valid(record)
    }

    // MARK: Keys and hashes

    /// `gk_` + 32 random bytes (from the system CSPRNG) in base64url.
    static func generateKey() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        return keyPrefix + Base64URL.encode(bytes)
    }

    static func hash(of key: String) -> String {
        SHA256Hex.of(key)
    }

    /// Whether `key` has the shape of a key we issue (cheap rejection of garbage without Redis).
    /// The prefix and 43 base64url characters (32 random bytes): checked byte by byte, without decoding,
    /// since it runs for every keyed request.
    /// How long an imported key may be: at least as long as the weakest keys other gateways hand out.
    static let importedLength = 16...256

    /// Whether a presented key may be one the store holds: a generated key, or an imported one (16–256
    /// visible ASCII characters). Anything else is unknown without a Redis read.
    static func isPresentable(_ key: String) -> Bool {
        importedLength.contains(key.utf8.count) && key.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    private static func json(_ value: some Encodable) -> String {
        // Records hold strings, numbers and dates only; encoding cannot fail.
        String(decoding: (try? APIKeyRecord.encoder.encode(value)) ?? Data(), as: UTF8.self)
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ json: String) -> T? {
        try? APIKeyRecord.decoder.decode(T.self, from: Data(json.utf8))
    }
}

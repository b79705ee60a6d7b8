import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The engine's in-memory response cache: LRU bounded by total bytes, with request coalescing.
///
/// ```swift
/// let result = try await cache.fetch(key: key, policy: api.cache, requestHeaders: head.headers) {
///     try await proxy.forwardBuffered(head)          // called once however many requests wait
/// }
/// // result.response, and result.status for X-Cache (HIT or MISS)
/// ```
///
/// What is stored follows the API's policy (methods, TTL, statuses) and HTTP's rules for a shared cache
/// (RFC 9111): never a response with `no-store`, `private`, `no-cache`, `Set-Cookie` or `Vary: *`; the
/// backend's `s-maxage`/`max-age` shortens the policy TTL; a request carrying `Authorization` is stored
/// only if the response says `public` or `s-maxage`. A client's `no-cache` (or `Pragma: no-cache`)
/// skips the lookup and refreshes the entry; a client's `no-store` skips the lookup and storing.
///
/// Concurrent misses for one key make one loader call; the others wait for it and get its response if
/// it may be shared, or call the loader themselves if not. A purge while a load is in flight keeps that
/// load's response out of the cache.
///
/// Thread-safe; the lock is never held across an `await`.
final class ResponseCache: Sendable {
    /// How a response was obtained, for `X-Cache` and metrics.
    enum Status: String, Sendable, Hashable, CaseIterable {
        /// Served from the cache.
        case hit
        /// Waited for another request's backend call for the same key.
        case coalesced
        /// This request's own backend call.
        case miss
        /// The request or the policy kept the cache out of it.
        case bypass

        /// The `X-Cache` header value.
        var header: String { self == .hit || self == .coalesced ? "HIT" : "MISS" }

        /// The position in `allCases`.
        var index: Int {
            switch self {
            case .hit: 0
            case .coalesced: 1
            case .miss: 2
            case .bypass: 3
            }
        }
    }

    struct Result: Sendable {
        var response: CachedResponse
        var status: Status
        /// For hits: how long the response has been cached (the `Age` header).
        var age: Duration
    }

    /// Counters, for metrics.
    struct Stats: Sendable, Hashable {
        var hits = 0
        var misses = 0
        var coalesced = 0
        var evictions = 0
        var stores = 0
        var entries = 0
        var bytes = 0
    }

    let maxBytes: Int
    let maxEntryBytes: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state: NIOLockedValueBox<State>

    private struct Entry {
        var response: CachedResponse
        var storedAt: ContinuousClock.Instant
        var expiresAt: ContinuousClock.Instant
        var size: Int
    }

    private enum WaitResult: Sendable {
        case shared(CachedResponse)
        case loadYourself
    }

    private struct Flight {
        var waiters: [UInt64: CheckedContinuation<WaitResult, any Error>] = [:]
    }

    private struct State {
        var entries = LRUList<CacheKey, Entry>()
        var flights: [CacheKey: Flight] = [:]
        var bytes = 0
        var nextWaiterID: UInt64 = 0
        /// Bumped by every purge; a load that began under an older generation is not stored.
        var purgeGeneration: UInt64 = 0
        var stats = Stats()

        mutating func remove(_ key: CacheKey) {
            if let entry = entries.remove(key) { bytes -= entry.size }
        }
    }

    /// - Parameters:
    ///   - maxBytes: the budget for all entries (bodies, headers and keys).
    ///   - maxEntryBytes: larger responses are passed through but not stored (default: an eighth of the budget).
    ///   - now: monotonic clock, injectable for tests.
    init(maxBytes: Int, maxEntryBytes: Int? = nil, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.maxBytes = maxBytes
        self.maxEntryBytes = min(maxEntryBytes ?? max(1, maxBytes / 8), maxBytes)
        self.now = now
        self.state = NIOLockedValueBox(State())
    }

    var stats: Stats {
        state.withLockedValue { s in
            var stats = s.stats
            stats.entries = s.entries.count
            stats.bytes = s.bytes
            return stats
        }
    }

    // MARK: Fetch

    /// Returns the cached response for `key`, or calls `loader` (once for all concurrent misses on the
    /// key) and stores its response if the policy and HTTP's rules allow.
    ///
    /// - Parameters:
    ///   - key: the request's key (see ``CacheKey/init(apiID:method:host:uri:headers:policy:)``).
    ///   - policy: the API's cache policy.
    ///   - requestHeaders: the client's headers, for `Cache-Control`, `Pragma` and `Authorization`.
    ///   - loader: fetches the response from the backend, fully buffered.
    func fetch(
        key: CacheKey, policy: CachePolicy, requestHeaders: HTTPHeaders,
        loader: @Sendable () async throws -> CachedResponse
    ) async throws -> Result {
        guard policy.enabled, policy.methods.contains(key.method) else {
            return Result(response: try await loader(), status: .bypass, age: .zero)
        }
        let request = CacheControl(requestHeaders)
        if request.noStore {
            return Result(response: try await loader(), status: .bypass, age: .zero)
        }
        let hasAuthorization = requestHeaders.contains(name: "authorization")
        if request.noCache {
            return try await load(key, policy: policy, hasAuthorization: hasAuthorization, lead: false, loader: loader)
        }

        enum Step {
            case hit(CachedResponse, age: Duration)
            case lead
            case wait
        }
        let now = self.now()
        let step = state.withLockedValue { s -> Step in
            if let entry = s.entries.get(key) {
                if entry.expiresAt > now {
                    s.stats.hits += 1
                    return .hit(entry.response, age: now - entry.storedAt)
                }
                s.remove(key)
            }
            if s.flights[key] != nil {
                s.stats.coalesced += 1
                return .wait
            }
            s.flights[key] = Flight()
            return .lead
        }
        switch step {
        case .hit(let response, let age):
            return Result(response: response, status: .hit, age: age)
        case .lead:
            return try await load(key, policy: policy, hasAuthorization: hasAuthorization, lead: true, loader: loader)
        case .wait:
            switch try await waitForFlight(key) {
            case .shared(let response):
                return Result(response: response, status: .coalesced, age: .zero)
            case .loadYourself:
                return try await load(key, policy: policy, hasAuthorization: hasAuthorization, lead: false, loader: loader)
            }
        }
    }

    /// The fresh stored response for `key`, found without waiting: what ``fetch(key:policy:requestHeaders:loader:)``
    /// would answer as a hit. Nil when there is none, or when the request's own `Cache-Control` asks
    /// to go around the cache (then `fetch` decides).
    func cachedHit(key: CacheKey, policy: CachePolicy, requestHeaders: HTTPHeaders) -> Result? {
        guard policy.enabled, policy.methods.contains(key.method) else { return nil }
        let request = CacheControl(requestHeaders)
        if request.noStore || request.noCache { return nil }
        let now = self.now()
        return state.withLockedValue { s -> Result? in
            guard let entry = s.entries.get(key), entry.expiresAt > now else { return nil }
            s.stats.hits += 1
            return Result(response: entry.response, status: .hit, age: now - entry.storedAt)
        }
    }

    /// Calls the loader and stores what may be stored. As the leader of a flight, hands the outcome to
    /// the waiters.
    private func load(
        _ key: CacheKey, policy: CachePolicy, hasAuthorization: Bool, lead: Bool,
        loader: @Sendable () async throws -> CachedResponse
    ) async throws -> Result {
        let generation = state.withLockedValue { s in
            s.stats.misses += 1
            return s.purgeGeneration
        }
        let response: CachedResponse
        do {
            response = try await loader()
        } catch {
            if lead {
                let waiters = state.withLockedValue { s -> [CheckedContinuation<WaitResult, any Error>] in
                    guard let flight = s.flights.removeValue(forKey: key) else { return [] }
                    return Array(flight.waiters.values)
                }
                for waiter in waiters { waiter.resume(throwing: error) }
            }
            throw error
        }
        let ttl = Self.storableTTL(response, policy: policy, hasAuthorization: hasAuthorization)
        let size = response.size + key.description.utf8.count + 128
        let storedAt = self.now()
        let waiters = state.withLockedValue { s -> [CheckedContinuation<WaitResult, any Error>] in
            var waiters: [CheckedContinuation<WaitResult, any Error>] = []
            if lead, let flight = s.flights.removeValue(forKey: key) { waiters = Array(flight.waiters.values) }
            guard let ttl, size <= maxEntryBytes, s.purgeGeneration == generation else { return waiters }
            s.remove(key)
            s.entries.set(key, Entry(response: response, storedAt: storedAt, expiresAt: storedAt.advanced(by: ttl), size: size))
            s.bytes += size
            s.stats.stores += 1
            while s.bytes > maxBytes, let evicted = s.entries.removeLeastRecent() {
                s.bytes -= evicted.value.size
                s.stats.evictions += 1
            }
            return waiters
        }
        let outcome: WaitResult = ttl != nil ? .shared(response) : .loadYourself
        for waiter in waiters { waiter.resume(returning: outcome) }
        return Result(response: response, status: .miss, age: .zero)
    }

    /// Waits for the flight on `key`; cancellation ends the wait (not the flight).
    private func waitForFlight(_ key: CacheKey) async throws -> WaitResult {
        let id = state.withLockedValue { s -> UInt64 in
            s.nextWaiterID &+= 1
            return s.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<WaitResult, any Error>) in
                let registered = state.withLockedValue { s -> Bool in
                    guard !Task.isCancelled, s.flights[key] != nil else { return false }
                    s.flights[key]?.waiters[id] = continuation
                    return true
                }
                if !registered {
                    // Cancelled already, or the flight landed between deciding to wait and getting here.
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        continuation.resume(returning: .loadYourself)
                    }
                }
            }
        } onCancel: {
            let waiter = state.withLockedValue { $0.flights[key]?.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// How long `response` may be kept under `policy`, or nil if it must not be stored.
    static func storableTTL(_ response: CachedResponse, policy: CachePolicy, hasAuthorization: Bool) -> Duration? {
        guard policy.statusCodes.contains(Int(response.status.code)) else { return nil }
        let directives = CacheControl(response.headers)
        if directives.noStore || directives.isPrivate || directives.noCache { return nil }
        if response.headers.contains(name: "set-cookie") { return nil }
        if response.headers["vary"].contains(where: { $0.contains("*") }) { return nil }
        if hasAuthorization && !(directives.isPublic || directives.sharedMaxAge != nil) { return nil }
        var seconds = policy.ttlSeconds
        if let shared = directives.sharedMaxAge {
            seconds = min(seconds, shared)
        } else if let maxAge = directives.maxAge {
            seconds = min(seconds, maxAge)
        }
        return seconds > 0 ? .seconds(seconds) : nil
    }

    // MARK: Lookup and purge

    /// The cached response for `key` if fresh, without loading (counts as a hit or miss).
    func cached(_ key: CacheKey) -> CachedResponse? {
        let now = self.now()
        return state.withLockedValue { s in
            if let entry = s.entries.get(key), entry.expiresAt > now {
                s.stats.hits += 1
                return entry.response
            }
            s.remove(key)
            s.stats.misses += 1
            return nil
        }
    }

    /// Removes every entry; returns how many.
    @discardableResult
    func purgeAll() -> Int {
        purge { _ in true }
    }

    /// Removes the entries of one API.
    @discardableResult
    func purge(apiID: String) -> Int {
        purge { $0.apiID == apiID }
    }

    /// Removes entries whose path starts with `prefix` (a plain string prefix), optionally only for one
    /// API or host.
    @discardableResult
    func purge(pathPrefix prefix: String, apiID: String? = nil, host: String? = nil) -> Int {
        let host = host.map(RouteTable.normalizedHost)
        return purge { key in
            key.path.hasPrefix(prefix) && (apiID == nil || key.apiID == apiID) && (host == nil || key.host == host)
        }
    }

    /// Removes one resource (`host/path?query`, see ``CacheKey/resource``) in every method and variant.
    @discardableResult
    func purge(resource: String) -> Int {
        purge { $0.resource == resource }
    }

    /// Removes exactly this key.
    @discardableResult
    func purge(key: CacheKey) -> Int {
        purge { $0 == key }
    }

    private func purge(where predicate: (CacheKey) -> Bool) -> Int {
        state.withLockedValue { s in
            s.purgeGeneration &+= 1
            let removed = s.entries.removeAll { key, _ in predicate(key) }
            for (_, entry) in removed { s.bytes -= entry.size }
            return removed.count
        }
    }
}

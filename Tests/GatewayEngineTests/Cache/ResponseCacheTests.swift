import GatewayTesting
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import GatewayEngine

/// A backend stand-in: counts calls, answers with a body naming the call, can be held until released.
private final class FakeBackend: Sendable {
    private let state = Mutex<(calls: Int, gate: [CheckedContinuation<Void, Never>], open: Bool)>((0, [], true))
    let headers: HTTPHeaders
    let status: HTTPResponseStatus

    init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:], held: Bool = false) {
        self.status = status
        self.headers = headers
        state.withLock { $0.open = !held }
    }

    var calls: Int { state.withLock { $0.calls } }

    func release() {
        let waiting = state.withLock { s in
            s.open = true
            defer { s.gate = [] }
            return s.gate
        }
        for c in waiting { c.resume() }
    }

    func load() async throws -> CachedResponse {
        let n = state.withLock { s in
            s.calls += 1
            return s.calls
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let open = state.withLock { s in
                if !s.open { s.gate.append(c) }
                return s.open
            }
            if open { c.resume() }
        }
        return CachedResponse(status: status, headers: headers, body: ByteBuffer(string: "response \(n)"))
    }
}

@Suite struct ResponseCacheTests {
    let policy = CachePolicy(enabled: true, ttlSeconds: 60)
    let clock = ManualClock()

    private func key(_ path: String, api: String = "a", method: String = "GET", vary: [String] = []) -> CacheKey {
        CacheKey(apiID: api, method: method, host: "example.com", path: path, vary: vary)
    }

    private func body(_ r: ResponseCache.Result) -> String { String(buffer: r.response.body) }

    /// Fifty concurrent misses on one key make one backend call; all fifty get its response.
    @Test func coalescesConcurrentMisses() async throws {
        let cache = ResponseCache(maxBytes: 1 << 20, now: clock.instantSource)
        let backend = FakeBackend(held: true)
        let k = key("/hot")
        let results = try await withThrowingTaskGroup(of: ResponseCache.Result.self) { group in
            for _ in 0..<50 {
                group.addTask { try await cache.fetch(key: k, policy: policy, requestHeaders: [:]) { try await backend.load() } }
            }
            try await waitUntil("49 requests waiting on the first") { cache.stats.coalesced == 49 }
            backend.release()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(backend.calls == 1)
        #expect(results.count == 50)
        #expect(results.allSatisfy { body($0) == "response 1" })
        #expect(results.filter { $0.status == .miss }.count == 1)
        #expect(results.filter { $0.status == .coalesced }.count == 49)
        let again = try await cache.fetch(key: k, policy: policy, requestHeaders: [:]) { try await backend.load() }
        #expect(again.status == .hit && body(again) == "response 1" && again.status.header == "HIT")
        #expect(backend.calls == 1)
        let stats = cache.stats
        #expect(stats.hits == 1 && stats.misses == 1 && stats.coalesced == 49 && stats.entries == 1)
    }

    /// A response the backend marks private is not shared: waiters make their own calls.
    @Test func doesNotShareUnshareableResponses() async throws {
        let cache = ResponseCache(maxBytes: 1 << 20, now: clock.instantSource)
        let backend = FakeBackend(headers: ["Cache-Control": "private"], held: true)
        let results = try await withThrowingTaskGroup(of: ResponseCache.Result.self) { group in
            for _ in 0..<5 {
                group.addTask { try await cache.fetch(key: key("/me"), policy: policy, requestHeaders: [:]) { try await backend.load() } }
            }
            try await waitUntil("4 waiting") { cache.stats.coalesced == 4 }
            backend.release()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(backend.calls == 5)
        #expect(Set(results.map(body)).count == 5)
        #expect(cache.stats.entries == 0)
    }

    /// A failed load fails its waiters too; the next request tries again.
    @Test func loaderErrorsReachWaitersAndAreNotCached() async throws {
        struct BackendDown: Error {}
        let cache = ResponseCache(maxBytes: 1 << 20, now: clock.instantSource)
        let gate = FakeBackend(held: true)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    do {
                        _ = try await cache.fetch(key: key("/err"), policy: policy, requestHeaders: [:]) {
                            _ = try await gate.load()
                            throw BackendDown()
                        }
                        return true
                    } catch {
                        return error is BackendDown
                    }
                }
            }
            try? await waitUntil("2 waiting") { cache.stats.coalesced == 2 }
            gate.release()
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes == [true, true, true] && gate.calls == 1)
        let ok = FakeBackend()
        let r = try await cache.fetch(key: key("/err"), policy: policy, requestHeaders: [:]) { try await ok.load() }
        #expect(r.status == .miss && ok.calls == 1)
    }

    /// Backend `no-store`, `private`, `no-cache`, `Set-Cookie`, `Vary: *` and statuses outside the policy
    /// are never stored; `max-age` and `s-maxage` shorten the TTL; `Authorization` needs `public`.
    @Test func followsHTTPCachingRules() {
        func ttl(_ headers: HTTPHeaders, status: HTTPResponseStatus = .ok, auth: Bool = false) -> Duration? {
            ResponseCache.storableTTL(CachedResponse(status: status, headers: headers), policy: policy, hasAuthorization: auth)
        }
        #expect(ttl([:]) == .seconds(60))
        #expect(ttl(["Cache-Control": "no-store"]) == nil)
        #expect(ttl(["Cache-Control": "public, private"]) == nil)
        #expect(ttl(["Cache-Control": "no-cache"]) == nil)
        #expect(ttl(["Set-Cookie": "a=b"]) == nil)
        #expect(ttl(["Vary": "*"]) == nil)
        #expect(ttl([:], status: .notFound) == nil)
        #expect(ttl(["Cache-Control": "max-age=10"]) == .seconds(10))
        #expect(ttl(["Cache-Control": "max-age=600"]) == .seconds(60))
        #expect(ttl(["Cache-Control": "max-age=10, s-maxage=20"]) == .seconds(20))
        #expect(ttl(["Cache-Control": "max-age=0"]) == nil)
        #expect(ttl([:], auth: true) == nil)
        #expect(ttl(["Cache-Control": "public"], auth: true) == .seconds(60))
    }

    /// Entries expire after their TTL; a client's `no-cache` refetches and refreshes the entry; a
    /// client's `no-store` bypasses the cache entirely.
    @Test func expiryAndClientDirectives() async throws {
        let cache = ResponseCache(maxBytes: 1 << 20, now: clock.instantSource)
        let backend = FakeBackend(headers: ["Cache-Control": "max-age=5"])
        let k = key("/x")
        func get(_ headers: HTTPHeaders = [:]) async throws -> ResponseCache.Result {
            try await cache.fetch(key: k, policy: policy, requestHeaders: headers) { try await backend.load() }
        }
        #expect(try await get().status == .miss)
        clock.advance(by: .seconds(4))
        let hit = try await get()
        #expect(hit.status == .hit && hit.age == .seconds(4))
        clock.advance(by: .seconds(1))
        let expired = try await get()
        #expect(expired.status == .miss && body(expired) == "response 2")
        let refreshed = try await get(["Cache-Control": "no-cache"])
        #expect(refreshed.status == .miss && body(refreshed) == "response 3")
        #expect(body(try await get()) == "response 3")
        #expect(try await get(["Pragma": "no-cache"]).status == .miss)
        let bypass = try await get(["Cache-Control": "no-store"])
        #expect(bypass.status == .bypass && body(bypass) == "response 5")
        #expect(body(try await get()) == "response 4", "no-store did not replace the entry")
        var off = policy
        off.enabled = false
        #expect(try await cache.fetch(key: k, policy: off, requestHeaders: [:]) { try await backend.load() }.status == .bypass)
        #expect(
            try await cache.fetch(key: key("/x", method: "POST"), policy: policy, requestHeaders: [:]) { try await backend.load() }.status == .bypass)
    }

    /// The least recently used entries go first when the byte budget is exceeded.
    @Test func evictsLeastRecentlyUsedByBytes() async throws {
        let body = ByteBuffer(repeating: 0x61, count: 1000)
        let cache = ResponseCache(maxBytes: 3_600, maxEntryBytes: 2_000, now: clock.instantSource)
        func put(_ path: String, size: Int = 1000) async throws {
            _ = try await cache.fetch(key: key(path), policy: policy, requestHeaders: [:]) {
                CachedResponse(status: .ok, body: ByteBuffer(repeating: 0x61, count: size))
            }
        }
        try await put("/1")
        try await put("/2")
        try await put("/3")
        #expect(cache.stats.entries == 3 && cache.stats.evictions == 0)
        #expect(cache.cached(key("/1"))?.body == body)  // /1 is now the most recent
        try await put("/4")
        #expect(cache.stats.evictions == 1)
        #expect(cache.cached(key("/2")) == nil, "the least recently used went")
        #expect(cache.cached(key("/1")) != nil && cache.cached(key("/3")) != nil && cache.cached(key("/4")) != nil)
        #expect(cache.stats.bytes <= 3_600)
        try await put("/big", size: 5_000)
        #expect(cache.cached(key("/big")) == nil, "larger than an entry may be")
        #expect(cache.stats.entries == 3)
    }

    /// Vary headers split the key; purges remove by API, path prefix, resource or everything.
    @Test func varyAndPurges() async throws {
        let cache = ResponseCache(maxBytes: 1 << 20, now: clock.instantSource)
        var varying = policy
        varying.varyHeaders = ["accept"]
        let json = CacheKey(
            apiID: "a", method: "GET", host: "Example.com:80", uri: "/p/1?x=1", headers: ["Accept": "application/json"], policy: varying)
        let html = CacheKey(apiID: "a", method: "GET", host: "example.com", uri: "/p/1?x=1", headers: ["Accept": "text/html"], policy: varying)
        #expect(json != html && json.resource == "example.com/p/1?x=1" && json.resource == html.resource)
        let keys = [json, html, key("/p/2"), key("/q/1"), key("/p/3", api: "b"), key("/p/2", method: "HEAD")]
        func fill() async throws {
            for k in keys {
                _ = try await cache.fetch(key: k, policy: varying, requestHeaders: [:]) { CachedResponse(status: .ok) }
            }
            #expect(cache.stats.entries == keys.count)
        }
        try await fill()
        #expect(cache.purge(resource: "example.com/p/1?x=1") == 2)
        #expect(cache.purge(apiID: "b") == 1)
        #expect(cache.purge(pathPrefix: "/p/") == 2)  // /p/2 GET and HEAD
        #expect(cache.stats.entries == 1)
        #expect(cache.purgeAll() == 1)
        try await fill()
        #expect(cache.purge(pathPrefix: "/p", apiID: "a") == 4)
        #expect(cache.purge(key: key("/q/1")) == 1)
        #expect(cache.stats.entries == 1 && cache.stats.bytes > 0)
        cache.purgeAll()
        #expect(cache.stats.bytes == 0)
    }

    /// A purge while a load is in flight keeps that load's (possibly stale) response out of the cache.
    @Test func purgeDuringALoadWins() async throws {
        let cache = ResponseCache(maxBytes: 1 << 20, now: clock.instantSource)
        let backend = FakeBackend(held: true)
        async let first = cache.fetch(key: key("/p"), policy: policy, requestHeaders: [:]) { try await backend.load() }
        try await waitUntil("load started") { backend.calls == 1 }
        cache.purge(pathPrefix: "/p")
        backend.release()
        #expect(try await first.status == .miss)
        #expect(cache.stats.entries == 0)
    }

    /// A waiter whose task is cancelled stops waiting; the flight goes on for the others.
    @Test func cancelledWaiterLeavesTheFlight() async throws {
        let cache = ResponseCache(maxBytes: 1 << 20, now: clock.instantSource)
        let backend = FakeBackend(held: true)
        let leader = Task { try await cache.fetch(key: key("/c"), policy: policy, requestHeaders: [:]) { try await backend.load() } }
        try await waitUntil("leader loading") { backend.calls == 1 }
        let waiter = Task { try await cache.fetch(key: key("/c"), policy: policy, requestHeaders: [:]) { try await backend.load() } }
        try await waitUntil("waiter waiting") { cache.stats.coalesced == 1 }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        backend.release()
        #expect(try await leader.value.status == .miss)
        #expect(backend.calls == 1)
    }
}

@Suite struct LRUListTests {
    @Test func ordersByUseAndReusesSlots() {
        var lru = LRUList<String, Int>()
        lru.set("a", 1)
        lru.set("b", 2)
        lru.set("c", 3)
        #expect(lru.keysNewestFirst == ["c", "b", "a"])
        #expect(lru.get("a") == 1)
        #expect(lru.keysNewestFirst == ["a", "c", "b"])
        #expect(lru.peek("b") == 2 && lru.keysNewestFirst == ["a", "c", "b"])
        #expect(lru.removeLeastRecent()?.key == "b")
        #expect(lru.set("a", 10) == 1)
        lru.set("d", 4)
        #expect(lru.keysNewestFirst == ["d", "a", "c"])
        #expect(lru.remove("a") == 10)
        #expect(lru.keysNewestFirst == ["d", "c"] && lru.count == 2)
        let removed = lru.removeAll { key, _ in key == "c" }
        #expect(removed.map(\.key) == ["c"] && lru.keysNewestFirst == ["d"])
        #expect(lru.removeLeastRecent()?.key == "d" && lru.isEmpty && lru.removeLeastRecent() == nil)
    }

    /// 20,000 seeded random operations keep the same order and values as a plain array kept newest first.
    @Test func matchesASimpleModelUnderRandomOperations() {
        var random = SplitMix64(seed: 0x1ce_ca4e)
        var lru = LRUList<Int, Int>()
        var model: [(key: Int, value: Int)] = []  // newest first
        for step in 0..<20_000 {
            let key = Int.random(in: 0..<40, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let old = model.firstIndex { $0.key == key }.map { model.remove(at: $0).value }
                model.insert((key, step), at: 0)
                #expect(lru.set(key, step) == old)
            case 4..<7:
                let found = model.firstIndex { $0.key == key }.map { model.remove(at: $0) }
                if let found { model.insert(found, at: 0) }
                #expect(lru.get(key) == found?.value)
            case 7, 8:
                let found = model.firstIndex { $0.key == key }.map { model.remove(at: $0).value }
                #expect(lru.remove(key) == found)
            default:
                let oldest = model.popLast()
                let taken = lru.removeLeastRecent()
                #expect(taken?.key == oldest?.key && taken?.value == oldest?.value)
            }
            if step % 97 == 0 {
                #expect(lru.keysNewestFirst == model.map(\.key) && lru.count == model.count, "after step \(step)")
            }
        }
        #expect(ResponseCache.Status.allCases.enumerated().allSatisfy { $0.offset == $0.element.index })
    }
}

import GatewayCore
import GatewayTesting
import Logging
import Testing

@testable import GatewayEngine

@Suite struct RateLimiterTests {
    private func limiter(_ redis: RedisClient, _ keys: EngineKeys, liveNodes: Int = 1) -> RateLimiter {
        RateLimiter(redis: redis, keys: keys, liveNodes: { liveNodes }, logger: .forTesting())
    }

    /// Two engines (two clients, two pools) hammering one (API, client) together admit exactly the burst:
    /// the rate is so small that nothing refills during the test, so any double-count would show.
    @Test func twoEnginesAdmitExactlyTheConfiguredCount() async throws {
        try await withRedisServer { server in
            let keys = EngineKeys(prefix: uniquePrefix())
            let engines = (0..<2).map { _ in RedisClient(configuration: server.configuration(), logger: .forTesting()) }
            let limiters = engines.map { limiter($0, keys) }
            let policy = RateLimitPolicy(rate: 1, periodSeconds: 3600, burst: 50)
            let decisions = await withTaskGroup(of: RateLimitDecision.self) { group in
                for i in 0..<160 {
                    group.addTask {
                        await limiters[i % 2].check(api: "orders", client: "alice", policy: policy, failMode: .closed)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(decisions.filter(\.isAllowed).count == 50)
            #expect(decisions.filter { $0.outcome == .limited(.rate) }.count == 110)
            #expect(decisions.allSatisfy { $0.source == .redis })
            #expect(Set(decisions.filter(\.isAllowed).map(\.remaining)) == Set(0..<50), "each remaining count given out once")
            let refused = try #require(decisions.first { !$0.isAllowed })
            #expect(refused.retryAfter > .seconds(3500) && refused.retryAfter <= .seconds(3600))
            // Another client of the same API has its own budget.
            #expect(await limiters[0].check(api: "orders", client: "bob", policy: policy, failMode: .closed).isAllowed)
            for engine in engines { await engine.shutdown() }
        }
    }

    /// Over a one-second window with refills, two engines firing bursts of concurrent requests at each
    /// instant admit exactly what one GCRA would: the burst plus one per emission interval. (Time is
    /// injected so the window is exact; requests at one instant race each other for real.)
    @Test func twoEnginesAdmitExactlyTheRateOverAWindow() async throws {
        try await withRedisServer { server in
            let keys = EngineKeys(prefix: uniquePrefix())
            let engines = (0..<2).map { _ in RedisClient(configuration: server.configuration(), logger: .forTesting()) }
            let limiters = engines.map { limiter($0, keys) }
            let policy = RateLimitPolicy(rate: 10, periodSeconds: 1, burst: 5)
            let start: Int64 = 1_800_000_000_000_000
            var allowed = 0
            for step in 0..<100 {
                let now = start + Int64(step) * 10_000  // every 10 ms for 1 s
                allowed += await withTaskGroup(of: Int.self) { group in
                    for i in 0..<6 {
                        group.addTask {
                            let d = await limiters[i % 2].check(
                                api: "w", client: "c", policy: policy, failMode: .closed, nowMicroseconds: now)
                            return d.isAllowed ? 1 : 0
                        }
                    }
                    return await group.reduce(0, +)
                }
            }
            // 5 at once, then one every 100 ms: at 100, 200, ... 900 ms.
            #expect(allowed == 5 + 9)
            for engine in engines { await engine.shutdown() }
        }
    }

    /// The script's arithmetic equals the Swift GCRA step for step (time injected in place of TIME).
    @Test func scriptMatchesTheReferenceGCRA() async throws {
        try await withRedisClient { redis, _ in
            let rl = limiter(redis, EngineKeys(prefix: uniquePrefix()))
            let policy = RateLimitPolicy(rate: 10, periodSeconds: 1, burst: 3)  // one per 100 ms
            let base: Int64 = 1_700_000_000_000_000
            let offsets: [Int64] = [0, 0, 0, 0, 50_000, 99_999, 100_000, 100_001, 150_000, 450_000, 450_000, 2_000_000]
            var tat: Int64?
            for offset in offsets {
                let now = base + offset
                let expected = GCRA.decide(tat: tat, now: now, emissionInterval: policy.emissionIntervalMicroseconds, burst: 3)
                if expected.allowed { tat = expected.newTAT }
                let got = await rl.check(api: "a", client: "c", policy: policy, failMode: .closed, nowMicroseconds: now)
                #expect(got.isAllowed == expected.allowed, "at +\(offset)µs")
                #expect(got.remaining == expected.remaining, "at +\(offset)µs")
                #expect(got.retryAfter == .microseconds(expected.retryAfterMicroseconds), "at +\(offset)µs")
                #expect(got.reset == .microseconds(expected.resetMicroseconds), "at +\(offset)µs")
            }
        }
    }

    /// Quotas are exact across engines too; a request the quota refuses uses no rate, and one the rate
    /// refuses uses no quota.
    @Test func quotaIsExactAndIndependentOfRate() async throws {
        try await withRedisServer { server in
            let keys = EngineKeys(prefix: uniquePrefix())
            let engines = (0..<2).map { _ in RedisClient(configuration: server.configuration(), logger: .forTesting()) }
            let limiters = engines.map { limiter($0, keys) }
            let generous = RateLimitPolicy(rate: 1_000_000, periodSeconds: 1, burst: 1_000)
            let quota = QuotaPolicy(limit: 30, periodSeconds: 31_536_000)
            let decisions = await withTaskGroup(of: RateLimitDecision.self) { group in
                for i in 0..<80 {
                    group.addTask {
                        await limiters[i % 2].check(api: "q", client: "c", policy: generous, quota: quota, failMode: .closed)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(decisions.filter(\.isAllowed).count == 30)
            #expect(decisions.filter { $0.outcome == .limited(.quota) }.count == 50)
            #expect(Set(decisions.filter(\.isAllowed).compactMap(\.quotaRemaining)) == Set(0..<30))

            // With injected time: a quota refusal leaves the rate budget alone and vice versa.
            let rl = limiters[0]
            let tight = RateLimitPolicy(rate: 1, periodSeconds: 10, burst: 2)
            let small = QuotaPolicy(limit: 3, periodSeconds: 1_000)
            let t0: Int64 = 2_000_000_000_000_000
            func check(_ at: Int64) async -> RateLimitDecision.Outcome {
                await rl.check(api: "q2", client: "c", policy: tight, quota: small, failMode: .closed, nowMicroseconds: t0 + at).outcome
            }
            #expect(await check(0) == .allowed)  // quota 1
            #expect(await check(0) == .allowed)  // quota 2, burst used up
            #expect(await check(0) == .limited(.rate))  // no quota used
            #expect(await check(10_000_000) == .allowed)  // refilled one: quota 3
            #expect(await check(20_000_000) == .limited(.quota))  // rate would allow; quota is out
            #expect(await check(20_000_000) == .limited(.quota))
            #expect(await check(1_000_000_000) == .allowed, "the next quota window starts afresh")
            for engine in engines { await engine.shutdown() }
        }
    }

    /// With Redis gone: fail-closed gives a 503 decision; fail-open uses the local limiter at
    /// rate ÷ live nodes.
    @Test func fallsBackByFailModeWhenRedisIsDown() async throws {
        try await withRedisClient { redis, server in
            let rl = limiter(redis, EngineKeys(prefix: uniquePrefix()), liveNodes: 2)
            let policy = RateLimitPolicy(rate: 1, periodSeconds: 3600, burst: 10)
            #expect(await rl.check(api: "a", client: "c", policy: policy, failMode: .closed).source == .redis)
            await server.stop()
            let closed = await rl.check(api: "a", client: "c", policy: policy, failMode: .closed)
            #expect(closed.outcome == .unavailable && closed.source == .none)
            var open: [RateLimitDecision] = []
            for _ in 0..<20 { open.append(await rl.check(api: "a", client: "c", policy: policy, failMode: .open)) }
            #expect(open.allSatisfy { $0.source == .local })
            #expect(open.filter(\.isAllowed).count == 5)
            let stats = rl.stats
            #expect(stats.failedClosed == 1 && stats.localDecisions == 20 && stats.redisDecisions == 1)
        }
    }

    /// After `SCRIPT FLUSH` (or a Redis restart) the script is loaded again transparently.
    @Test func reloadsTheScriptAfterAFlush() async throws {
        try await withRedisClient { redis, _ in
            let rl = limiter(redis, EngineKeys(prefix: uniquePrefix()))
            let policy = RateLimitPolicy(rate: 1, periodSeconds: 3600, burst: 2)
            #expect(await rl.check(api: "a", client: "c", policy: policy, failMode: .closed).isAllowed)
            try await redis.send("SCRIPT", "FLUSH")
            let decision = await rl.check(api: "a", client: "c", policy: policy, failMode: .closed)
            #expect(decision.isAllowed && decision.source == .redis && decision.remaining == 0)
        }
    }

    /// Rate and quota keys of one (API, client) share a hash tag; odd client ids are hashed into it.
    @Test func keysShareAHashTag() {
        let keys = EngineKeys(prefix: "gc")
        #expect(keys.rateLimit(api: "orders", client: "alice") == "gc:rl:{orders:alice}")
        #expect(keys.quota(api: "orders", client: "alice") == "gc:rq:{orders:alice}")
        // Client ids as the engine makes them (`key:<id>`, `ip:<address>`) stay readable.
        #expect(keys.rateLimit(api: "orders", client: "key:3f2a9c") == "gc:rl:{orders:key:3f2a9c}")
        #expect(keys.rateLimit(api: "orders", client: "ip:::1") == "gc:rl:{orders:ip:::1}")
        let odd = keys.rateLimit(api: "orders", client: "a}b{c")
        #expect(odd.hasPrefix("gc:rl:{orders:#") && odd.filter { $0 == "{" }.count == 1 && odd.filter { $0 == "}" }.count == 1)
        #expect(RateLimitDecision.headerSeconds(.milliseconds(1001)) == 2)
        let limited = RateLimitDecision(
            outcome: .limited(.rate), source: .redis, limit: 20, remaining: 0, retryAfter: .milliseconds(200),
            reset: .milliseconds(2500), quotaRemaining: nil)
        #expect(
            limited.headers.map { "\($0.name): \($0.value)" } == [
                "X-RateLimit-Limit: 20", "X-RateLimit-Remaining: 0", "X-RateLimit-Reset: 3", "Retry-After: 1",
            ])
        var allowed = limited
        allowed.outcome = .allowed
        #expect(allowed.headers.count == 3)
        allowed.source = .none
        #expect(allowed.headers.isEmpty)
        #expect(RateLimitDecision.headerSeconds(.zero) == 0)
    }
}

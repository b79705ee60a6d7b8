import Testing

@testable import GatewayEngine

@Suite struct GCRATests {
    /// A fresh key takes exactly `burst` requests at once, then one per emission interval.
    @Test func burstThenSteadyRate() {
        var tat: Int64?
        var results: [Bool] = []
        var remaining: [Int] = []
        for _ in 0..<5 {
            let o = GCRA.decide(tat: tat, now: 1_000, emissionInterval: 100, burst: 3)
            if o.allowed { tat = o.newTAT }
            results.append(o.allowed)
            remaining.append(o.remaining)
        }
        #expect(results == [true, true, true, false, false])
        #expect(remaining == [2, 1, 0, 0, 0])
        let refused = GCRA.decide(tat: tat, now: 1_000, emissionInterval: 100, burst: 3)
        #expect(refused.retryAfterMicroseconds == 100)
        #expect(refused.resetMicroseconds == 300)
        #expect(GCRA.decide(tat: tat, now: 1_099, emissionInterval: 100, burst: 3).allowed == false)
        #expect(GCRA.decide(tat: tat, now: 1_100, emissionInterval: 100, burst: 3).allowed == true)
    }

    /// An idle key forgets its past: after a long pause the whole burst is available again.
    @Test func idleKeyRefillsToBurstOnly() {
        let o = GCRA.decide(tat: 500, now: 1_000_000, emissionInterval: 100, burst: 3)
        #expect(o.allowed && o.remaining == 2 && o.newTAT == 1_000_100)
    }
}

@Suite struct LocalRateLimiterTests {
    /// The fallback admits rate ÷ live nodes and burst ÷ live nodes.
    @Test func sharesTheRateWithLiveNodes() {
        let clock = ManualClock()
        let local = LocalRateLimiter(now: clock.microsecondSource)
        let policy = RateLimitPolicy(rate: 10, periodSeconds: 1, burst: 10)
        let allowed = (0..<20).filter { _ in local.decide(key: "k", policy: policy, liveNodes: 2).isAllowed }.count
        #expect(allowed == 5)
        // 10/s over 2 nodes: one request per 200 ms here.
        clock.advance(by: .milliseconds(199))
        #expect(!local.decide(key: "k", policy: policy, liveNodes: 2).isAllowed)
        clock.advance(by: .milliseconds(1))
        let decision = local.decide(key: "k", policy: policy, liveNodes: 2)
        #expect(decision.isAllowed && decision.source == .local && decision.limit == 5)
        #expect(local.decide(key: "other", policy: policy, liveNodes: 2).isAllowed, "keys are independent")
    }
}

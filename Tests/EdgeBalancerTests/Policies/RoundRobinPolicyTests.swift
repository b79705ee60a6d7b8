import Testing

@testable import EdgeBalancer

@Suite struct RoundRobinPolicyTests {
    /// Every node gets exactly the same number of requests, in turn.
    @Test func spreadsRequestsEvenlyInTurn() {
        let now = ContinuousClock.now
        let candidates = makeCandidates(weights: [1, 5, 1], now: now)
        var policy = RoundRobinPolicy()
        var random = FastRandom(seed: 7)
        let picks = (0..<3000).map { _ in candidates[policy.pick(from: candidates, now: now, random: &random)].id }
        #expect(Array(picks.prefix(6)) == ["a", "b", "c", "a", "b", "c"])
        let counts = Dictionary(grouping: picks, by: { $0 }).mapValues(\.count)
        #expect(counts == ["a": 1000, "b": 1000, "c": 1000])
    }

    /// A node in slow start gets a reduced share that grows over the window.
    @Test func slowStartNodeRampsUp() {
        let clock = TestClock()
        let ramp = SlowStart(start: clock.now, window: .seconds(10), minimumFactor: 0.1)
        let candidates = makeCandidates(weights: [1, 1], now: clock.now, slowStart: [1: ramp])
        var policy = RoundRobinPolicy()
        var random = FastRandom(seed: 3)
        func shareOfB() -> Double {
            let picks = (0..<4000).map { _ in candidates[policy.pick(from: candidates, now: clock.now, random: &random)].id }
            return shares(picks)["b"] ?? 0
        }
        let early = shareOfB()
        clock.advance(by: .seconds(5))
        let middle = shareOfB()
        clock.advance(by: .seconds(6))
        let after = shareOfB()
        #expect(early < 0.15)
        #expect(middle > early && middle < after)
        #expect(abs(after - 0.5) < 0.01)
    }
}

import Testing

@testable import EdgeBalancer

@Suite struct LeastRequestPolicyTests {
    /// Of two nodes, the one with fewer requests in flight is picked.
    @Test func picksTheLessLoadedOfTwo() {
        let now = ContinuousClock.now
        let candidates = makeCandidates(weights: [1, 1], now: now)
        for _ in 0..<5 { candidates[0].load.requestStarted() }
        var policy = LeastRequestPolicy()
        var random = FastRandom(seed: 9)
        let picks = (0..<100).map { _ in candidates[policy.pick(from: candidates, now: now, random: &random)].id }
        #expect(picks.allSatisfy { $0 == "b" })
    }

    /// Under simulated load with equal nodes, shares are near equal; the heavier node takes more.
    @Test func sharesFollowWeightUnderLoad() {
        let clock = TestClock()
        let candidates = makeCandidates(weights: [3, 1], now: clock.now)
        let simulation = LatencySimulation(
            latency: { _, random in noisyLatency(.milliseconds(5), random: &random) }, concurrency: 16, requests: 8000)
        let counts = simulation.run(policy: .leastRequest, candidates: candidates, start: clock.now)
        let heavy = Double(counts[0]) / 8000
        #expect(heavy > 0.6 && heavy < 0.85, "heavy node share \(heavy)")
    }
}

import Testing

@testable import EdgeBalancer

@Suite struct SmoothWeightedPolicyTests {
    /// Weights 3:1 give exactly 75% to the heavy node, never more than three of its picks in a row.
    @Test func threeToOneGivesExactlySeventyFivePercentWithoutBursts() {
        let now = ContinuousClock.now
        let candidates = makeCandidates(weights: [3, 1], now: now)
        var policy = SmoothWeightedPolicy(count: 2)
        var random = FastRandom(seed: 1)
        let picks = (0..<4000).map { _ in candidates[policy.pick(from: candidates, now: now, random: &random)].id }
        #expect(picks.filter { $0 == "a" }.count == 3000)
        #expect(picks.filter { $0 == "b" }.count == 1000)
        #expect(longestRun(of: "a", in: picks) <= 3)
    }

    /// NGINX's example: weights 5, 1, 1 interleave as a a b a c a a.
    @Test func interleavesLikeNginx() {
        let now = ContinuousClock.now
        let candidates = makeCandidates(weights: [5, 1, 1], now: now)
        var policy = SmoothWeightedPolicy(count: 3)
        var random = FastRandom(seed: 1)
        let picks = (0..<7).map { _ in candidates[policy.pick(from: candidates, now: now, random: &random)].id }
        #expect(picks == ["a", "a", "b", "a", "c", "a", "a"])
    }

    /// On a retry the failed node is left out and the others keep their weighted shares.
    @Test func worksOnASubsetOfItsCandidates() {
        let now = ContinuousClock.now
        let candidates = makeCandidates(weights: [2, 1, 1], now: now)
        var policy = SmoothWeightedPolicy(count: 3)
        var random = FastRandom(seed: 1)
        let subset = Array(candidates.dropFirst())
        let picks = (0..<100).map { _ in subset[policy.pick(from: subset, now: now, random: &random)].id }
        #expect(picks.filter { $0 == "b" }.count == 50)
        #expect(!picks.contains("a"))
    }

    /// A ramping node's share follows its slow-start factor.
    @Test func slowStartReducesShareSmoothly() {
        let clock = TestClock()
        let ramp = SlowStart(start: clock.now, window: .seconds(10), minimumFactor: 0.1)
        let candidates = makeCandidates(weights: [1, 1], now: clock.now, slowStart: [1: ramp])
        var policy = SmoothWeightedPolicy(count: 2)
        var random = FastRandom(seed: 1)
        var picks = (0..<1100).map { _ in candidates[policy.pick(from: candidates, now: clock.now, random: &random)].id }
        #expect(abs((shares(picks)["b"] ?? 0) - 0.1 / 1.1) < 0.01)
        clock.advance(by: .seconds(10))
        picks = (0..<1000).map { _ in candidates[policy.pick(from: candidates, now: clock.now, random: &random)].id }
        #expect(abs((shares(picks)["b"] ?? 0) - 0.5) < 0.01)
    }
}

import NIOCore
import Testing

@testable import EdgeBalancer

@Suite struct PeakEWMAPolicyTests {
    /// Two identical nodes under concurrent load each get 40–60% of requests.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func identicalNodesGetNearEqualShares(seed: UInt64) {
        let clock = TestClock()
        let candidates = makeCandidates(weights: [100, 100], now: clock.now)
        let simulation = LatencySimulation(
            latency: { _, random in noisyLatency(.microseconds(500), random: &random) }, concurrency: 8, requests: 4000,
            seed: seed)
        let counts = simulation.run(policy: .peakEWMA, candidates: candidates, start: clock.now)
        let share = Double(counts[0]) / 4000
        print("simulated identical nodes, seed \(seed): node a share \(share)")
        #expect(share >= 0.4 && share <= 0.6, "node a got \(share)")
    }

    /// A node 40× slower than its peers gets a far smaller share than round-robin would give it.
    @Test func slowNodeGetsAClearlySmallerShareThanUnderRoundRobin() {
        func slowShare(_ policy: PolicyKind) -> Double {
            let clock = TestClock()
            let candidates = makeCandidates(weights: [100, 100, 100], now: clock.now)
            let simulation = LatencySimulation(
                latency: { node, random in noisyLatency(node == 2 ? .milliseconds(20) : .microseconds(500), random: &random) },
                concurrency: 8, requests: 6000)
            let counts = simulation.run(policy: policy, candidates: candidates, start: clock.now)
            return Double(counts[2]) / 6000
        }
        let underRoundRobin = slowShare(.roundRobin)
        let underEWMA = slowShare(.peakEWMA)
        print("simulated slow node share: round-robin \(underRoundRobin), peak-EWMA \(underEWMA)")
        #expect(abs(underRoundRobin - 1.0 / 3) < 0.01)
        #expect(underEWMA < 0.05, "slow node share under peak-EWMA: \(underEWMA)")
        #expect(underEWMA < underRoundRobin / 5)
    }

    /// A new node starts from the optimistic default and is preferred over measured slow nodes.
    @Test func newNodeStartsOptimistic() {
        let clock = TestClock()
        let candidates = makeCandidates(weights: [1, 1], now: clock.now, ewma: .init(decay: .seconds(10), initialLatency: .milliseconds(1)))
        candidates[0].load.observe(.milliseconds(50), at: clock.now)
        var policy = PeakEWMAPolicy()
        var random = FastRandom(seed: 1)
        #expect(candidates[policy.pick(from: candidates, now: clock.now, random: &random)].id == "b")
    }

    /// A node left idle after being slow decays back into contention.
    @Test func idleSlowNodeComesBackIntoContention() {
        let clock = TestClock()
        let candidates = makeCandidates(weights: [1, 1], now: clock.now)
        candidates[0].load.observe(.milliseconds(200), at: clock.now)
        candidates[1].load.observe(.milliseconds(2), at: clock.now)
        var policy = PeakEWMAPolicy()
        var random = FastRandom(seed: 1)
        #expect(candidates[policy.pick(from: candidates, now: clock.now, random: &random)].id == "b")
        // b keeps being used (and measured at 2 ms); a gets nothing and decays.
        for _ in 0..<60 {
            clock.advance(by: .seconds(1))
            candidates[1].load.observe(.milliseconds(2), at: clock.now)
        }
        #expect(candidates[policy.pick(from: candidates, now: clock.now, random: &random)].id == "a")
    }
}

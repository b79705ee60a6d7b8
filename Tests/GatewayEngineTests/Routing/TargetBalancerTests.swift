import Testing

@testable import GatewayEngine

@Suite struct TargetBalancerTests {
    private func balancer(_ weights: [Int], clock: ManualClock) -> TargetBalancer {
        TargetBalancer(
            targets: weights.enumerated().map { (BackendURL(host: "t\($0.offset)", port: 80, basePath: ""), $0.element) },
            now: clock.instantSource)
    }

    private func picks(_ b: TargetBalancer, _ n: Int) -> [Int] {
        (0..<n).compactMap { _ in b.next() }
    }

    /// Weights 5, 1, 1 give NGINX's smooth sequence, never five in a row to the heavy target.
    @Test func smoothWeightedSequence() {
        let b = balancer([5, 1, 1], clock: ManualClock())
        #expect(picks(b, 14) == [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0])
    }

    @Test func sharesFollowWeights() {
        let b = balancer([3, 2, 0, 1], clock: ManualClock())
        let counts = picks(b, 600).reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
        #expect(counts == [0: 300, 1: 200, 3: 100])
    }

    /// A target marked down is skipped until its retry time passes, then rejoins.
    @Test func skipsDownTargetUntilRetryAfter() {
        let clock = ManualClock()
        let b = balancer([1, 1], clock: clock)
        b.markDown(0, for: .seconds(5))
        #expect(b.isDown(0))
        #expect(picks(b, 4) == [1, 1, 1, 1])
        clock.advance(by: .seconds(4))
        #expect(picks(b, 2) == [1, 1])
        clock.advance(by: .seconds(1))
        #expect(!b.isDown(0))
        #expect(Set(picks(b, 2)) == [0, 1])
        b.markDown(1, for: .seconds(5))
        b.markUp(1)
        #expect(Set(picks(b, 2)) == [0, 1])
    }

    /// With every target down, all are tried rather than none.
    @Test func allDownFallsBackToAll() {
        let clock = ManualClock()
        let b = balancer([1, 1], clock: clock)
        b.markDown(0, for: .seconds(5))
        b.markDown(1, for: .seconds(5))
        #expect(Set(picks(b, 4)) == [0, 1])
    }

    @Test func noWeightedTargetGivesNil() {
        #expect(balancer([0, 0], clock: ManualClock()).next() == nil)
        #expect(balancer([], clock: ManualClock()).next() == nil)
        #expect(balancer([0], clock: ManualClock()).next() == nil)
    }

    /// One target (the fast path, no lock): every pick is it, marked down or not, as when all are down.
    @Test func singleTargetIsAlwaysPicked() {
        let b = balancer([3], clock: ManualClock())
        #expect(picks(b, 3) == [0, 0, 0])
        b.markDown(0, for: .seconds(5))
        #expect(b.isDown(0))
        #expect(picks(b, 2) == [0, 0])
        #expect(b.next().map { b.targets[$0].host } == "t0")
    }
}

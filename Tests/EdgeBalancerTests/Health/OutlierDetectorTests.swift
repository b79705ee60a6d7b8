import Testing

@testable import EdgeBalancer

@Suite struct OutlierDetectorTests {
    func detector(_ nodes: [String], consecutive: Int = 3) -> OutlierDetector {
        var configuration = OutlierDetector.Configuration()
        configuration.consecutiveFailures = consecutive
        configuration.baseEjection = .seconds(5)
        configuration.maxEjection = .seconds(12)
        var detector = OutlierDetector(configuration: configuration)
        detector.setNodes(nodes)
        return detector
    }

    /// Consecutive failures eject; a success in between resets the count.
    @Test func ejectsAfterConsecutiveFailures() {
        let clock = TestClock()
        var d = detector(["a", "b"])
        let r1 = d.record(.failure, node: "a", now: clock.now)
        #expect(r1 == .none)
        let r2 = d.record(.failure, node: "a", now: clock.now)
        #expect(r2 == .none)
        let r3 = d.record(.success, node: "a", now: clock.now)
        #expect(r3 == .none)
        let r4 = d.record(.failure, node: "a", now: clock.now)
        #expect(r4 == .none)
        let r5 = d.record(.failure, node: "a", now: clock.now)
        #expect(r5 == .none)
        let r6 = d.record(.failure, node: "a", now: clock.now)
        #expect(r6 == .eject(node: "a", until: clock.now + .seconds(5), ejections: 1))
        #expect(d.ejectedUntil("a", now: clock.now) != nil)
        #expect(d.ejectedUntil("b", now: clock.now) == nil)
    }

    /// The count of nodes with failures a success would reset follows failures, successes, ejections
    /// and node-set changes.
    @Test func countsNodesWithFailuresToReset() {
        let clock = TestClock()
        var d = detector(["a", "b", "c", "d"], consecutive: 2)
        #expect(d.nodesWithFailures == 0)
        _ = d.record(.failure, node: "a", now: clock.now)
        _ = d.record(.failure, node: "b", now: clock.now)
        #expect(d.nodesWithFailures == 2)
        _ = d.record(.success, node: "a", now: clock.now)
        #expect(d.nodesWithFailures == 1)
        let ejection = d.record(.failure, node: "b", now: clock.now)  // b's second: ejected, its count starts over
        #expect(ejection != .none && d.nodesWithFailures == 0)
        _ = d.record(.failure, node: "c", now: clock.now)
        #expect(d.nodesWithFailures == 1)
        d.setNodes(["a", "b", "d"])
        #expect(d.nodesWithFailures == 0)
    }

    /// Through ``PassiveHealth``, which skips its lock for a success while no node has failures: a
    /// success between failures still resets the count.
    @Test func passiveHealthSuccessBetweenFailuresResets() {
        let clock = TestClock()
        var configuration = OutlierDetector.Configuration()
        configuration.consecutiveFailures = 2
        let health = PassiveHealth(configuration: configuration)
        health.setNodes(["a", "b", "c"])
        health.record(.success, node: "a", now: clock.now)
        health.record(.failure, node: "a", now: clock.now)
        health.record(.success, node: "a", now: clock.now)
        health.record(.failure, node: "a", now: clock.now)
        #expect(health.ejectedUntil("a", now: clock.now) == nil)
        health.record(.failure, node: "a", now: clock.now)
        #expect(health.ejectedUntil("a", now: clock.now) != nil)
        health.finish()
    }

    /// Each repeated ejection lasts longer, up to the maximum; the node returns when its time is up.
    @Test func ejectionTimeGrowsWithRepeats() {
        let clock = TestClock()
        var d = detector(["a", "b"], consecutive: 1)
        let r7 = d.record(.failure, node: "a", now: clock.now)
        #expect(r7 == .eject(node: "a", until: clock.now + .seconds(5), ejections: 1))
        clock.advance(by: .seconds(5))
        let r8 = d.expire(now: clock.now)
        #expect(r8 == ["a"])
        let r9 = d.record(.failure, node: "a", now: clock.now)
        #expect(r9 == .eject(node: "a", until: clock.now + .seconds(10), ejections: 2))
        clock.advance(by: .seconds(10))
        let r10 = d.expire(now: clock.now)
        #expect(r10 == ["a"])
        let r11 = d.record(.failure, node: "a", now: clock.now)
        #expect(r11 == .eject(node: "a", until: clock.now + .seconds(12), ejections: 3))
    }

    /// Never more than half the nodes are out at once.
    @Test func neverEjectsMoreThanHalf() {
        let clock = TestClock()
        var d = detector(["a", "b", "c", "d"], consecutive: 1)
        let r12 = d.record(.failure, node: "a", now: clock.now)
        #expect(r12 != .none)
        let r13 = d.record(.failure, node: "b", now: clock.now)
        #expect(r13 != .none)
        let r14 = d.record(.failure, node: "c", now: clock.now)
        #expect(r14 == .none)
        #expect(d.ejectedUntil("c", now: clock.now) == nil)
        var single = detector(["a"], consecutive: 1)
        let r15 = single.record(.failure, node: "a", now: clock.now)
        #expect(r15 == .none)
    }

    /// Exchanges that ended during an ejection do not count again.
    @Test func ignoresOutcomesWhileEjected() {
        let clock = TestClock()
        var d = detector(["a", "b"], consecutive: 1)
        _ = d.record(.failure, node: "a", now: clock.now)
        let r16 = d.record(.failure, node: "a", now: clock.now + .seconds(1))
        #expect(r16 == .none)
        #expect(d.totalEjections("a") == 1)
    }
}

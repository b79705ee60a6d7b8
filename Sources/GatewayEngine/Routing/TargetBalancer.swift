import NIOConcurrencyHelpers

/// Picks the backend target for each request of one API: smooth weighted round robin, skipping targets
/// that passive health marked down until their retry time, and those active health checks call
/// unhealthy.
///
/// Shared by every request of the API, so picks are serialised by a lock held only for the pick itself.
final class TargetBalancer: Sendable {
    let targets: [BackendURL]
    private let state: NIOLockedValueBox<SmoothWeightedRoundRobin<ContinuousClock.Instant>>
    private let now: @Sendable () -> ContinuousClock.Instant
    /// The only target's index when there is one with a weight above 0: every pick is it (marked down
    /// or not, as with several targets all down), so it is returned without the lock or the clock.
    private let only: Int?

    /// - Parameters:
    ///   - targets: the backends, with their weights.
    ///   - now: the monotonic clock, injectable for tests.
    init(targets: [(url: BackendURL, weight: Int)], now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.targets = targets.map(\.url)
        self.state = NIOLockedValueBox(SmoothWeightedRoundRobin(weights: targets.map(\.weight)))
        self.now = now
        self.only = targets.count == 1 && targets[0].weight > 0 ? 0 : nil
    }

    /// The index in ``targets`` of the next target, or nil if the API has no target with a weight above
    /// 0. An index, not the target: callers read the target's fields in place (a copy of a `BackendURL`
    /// in an optional tuple went through the runtime's generic copy and destroy, about 900 instructions
    /// per request).
    func next() -> Int? {
        if let only { return only }
        let now = self.now()
        return state.withLockedValue { $0.next(now: now) }
    }

    /// Skips the target for `retryAfter` (after it refused a connection, for example).
    func markDown(_ index: Int, for retryAfter: Duration) {
        let until = now().advanced(by: retryAfter)
        state.withLockedValue { $0.markDown(index, until: until) }
    }

    /// Puts the target back at once (after it answered).
    func markUp(_ index: Int) {
        state.withLockedValue { $0.markUp(index) }
    }

    /// Takes the target out of rotation while its active health checks call it unhealthy.
    func setHealthy(_ index: Int, _ healthy: Bool) {
        state.withLockedValue { $0.setHealthy(index, healthy) }
    }

    /// Each target's state now, for the admin API: its weight, whether active checks hold it out, and how
    /// much longer passive health does.
    func states() -> [(weight: Int, unhealthy: Bool, passiveDownFor: Duration?)] {
        let now = self.now()
        return state.withLockedValue { swrr in
            swrr.peers.map { peer in
                (peer.weight, peer.unhealthy, peer.downUntil.flatMap { $0 > now ? $0 - now : nil })
            }
        }
    }

    func isDown(_ index: Int) -> Bool {
        let now = self.now()
        return state.withLockedValue { $0.isDown(index, now: now) }
    }
}

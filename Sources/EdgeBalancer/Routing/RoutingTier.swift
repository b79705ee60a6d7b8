import Synchronization

/// One locality tier of a ``RoutingTable``.
final class RoutingTier: Sendable {
    private struct State: Sendable {
        var policy: any BalancingPolicy
        var random: FastRandom
    }

    let region: String
    let candidates: [Candidate]
    private let state: Mutex<State>

    init(
        region: String, policy: PolicyKind, candidates: [Candidate], seed: UInt64?,
        balanceFactor: Double = ConsistentHashPolicy.defaultBalanceFactor
    ) {
        self.region = region
        self.candidates = candidates
        self.state = Mutex(
            State(
                policy: policy.makePolicy(candidates: candidates, balanceFactor: balanceFactor),
                random: seed.map(FastRandom.init(seed:)) ?? FastRandom()))
    }

    func pick(now: Instant, excluding: [String], hash: UInt64? = nil) -> Candidate? {
        let pool = excluding.isEmpty ? candidates : candidates.filter { !excluding.contains($0.id) }
        guard !pool.isEmpty else { return nil }
        if pool.count == 1 { return pool[0] }
        let index = state.withLock { state in
            var random = state.random
            defer { state.random = random }
            return state.policy.pick(from: pool, now: now, hash: hash, random: &random)
        }
        return pool[index]
    }
}

import GatewayCore
import Synchronization

/// A frozen routing table: the candidates of each locality tier with their policy state. Built from a
/// ``RoutingPlan`` and never edited; a change builds a new table that replaces this one whole (see
/// ``RoutingTableBox``).
///
/// Picks happen on every event loop at once: each tier keeps its policy and random generator behind its
/// own lock, held for one pick.
final class RoutingTable: Sendable {
    let plan: RoutingPlan
    /// Increases with every table the controller installs.
    let generation: Int
    let tiers: [RoutingTier]
    private let cumulativeShares: [Double]
    private let tierRandom: Mutex<FastRandom>

    /// A table with no nodes: every request gets 503.
    static let empty = RoutingTable(plan: .empty, generation: 0, loads: { _ in preconditionFailure("empty table has no nodes") })

    /// - Parameters:
    ///   - loads: the live load object of each node id.
    ///   - seed: fixes the random choices (tests); nil seeds from the system.
    init(plan: RoutingPlan, generation: Int, loads: (String) -> NodeLoad, seed: UInt64? = nil) {
        self.plan = plan
        self.generation = generation
        var tiers: [RoutingTier] = []
        var cumulative: [Double] = []
        var total = 0.0
        for (index, tier) in plan.tiers.enumerated() where !tier.members.isEmpty {
            let candidates = tier.members.enumerated().map { slot, member in
                Candidate(
                    slot: slot, target: member.target, weight: Double(member.weight), slowStart: member.slowStart,
                    load: loads(member.target.id))
            }
            let tierSeed = seed.map { $0 &+ UInt64(index) &* 0x9E37_79B9 }
            tiers.append(
                RoutingTier(
                    region: tier.region, policy: plan.policy, candidates: candidates, seed: tierSeed, balanceFactor: plan.hashBalanceFactor))
            total += tier.share
            cumulative.append(total)
        }
        self.tiers = tiers
        self.cumulativeShares = cumulative.map { total > 0 ? $0 / total : 1 }
        self.tierRandom = Mutex(seed.map { FastRandom(seed: $0 ^ 0x5EED) } ?? FastRandom())
    }

    var isEmpty: Bool { tiers.isEmpty }

    /// A node for a request: a tier by its share, then the policy's choice in it. Nodes in `excluding`
    /// (already tried) are skipped; when a tier has nothing left, the other tiers are tried in order.
    /// `hash`: the request's key (consistent hashing), which also picks the tier, so a key spilled to
    /// another region goes there every time.
    func pick(now: Instant, excluding: [String] = [], hash: UInt64? = nil) -> Candidate? {
        guard !tiers.isEmpty else { return nil }
        var first = 0
        if tiers.count > 1 {
            let u =
                hash.map { Double(StableHash.mix($0 ^ 0x7469_6572) >> 11) / Double(1 << 53) }
                ?? tierRandom.withLock { Double.random(in: 0..<1, using: &$0) }
            first = cumulativeShares.firstIndex { u < $0 } ?? tiers.count - 1
        }
        if let candidate = tiers[first].pick(now: now, excluding: excluding, hash: hash) { return candidate }
        for index in tiers.indices where index != first {
            if let candidate = tiers[index].pick(now: now, excluding: excluding, hash: hash) { return candidate }
        }
        return nil
    }
}

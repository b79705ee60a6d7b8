import GatewayCore

/// What a routing table will contain: which nodes, in which locality tiers with which shares, under which
/// policy. A pure function of the nodes' status; two equal plans make equivalent tables, so the controller
/// swaps tables only when the plan changes.
struct RoutingPlan: Sendable, Equatable {
    struct Member: Sendable, Equatable {
        var target: UpstreamTarget
        var weight: Int
        var slowStart: SlowStart?
    }

    struct Tier: Sendable, Equatable {
        /// The region, or empty when locality is off or in panic mode.
        var region: String
        /// The fraction of new requests this tier gets.
        var share: Double
        var members: [Member]
    }

    var policy: PolicyKind
    /// ``ConsistentHashPolicy``'s load bound (`hash.balanceFactor`).
    var hashBalanceFactor = ConsistentHashPolicy.defaultBalanceFactor
    var tiers: [Tier] = []
    /// Fewer than the panic threshold of eligible nodes are usable: routing spreads over all eligible
    /// nodes rather than overload the few healthy ones.
    var panic = false
    var usableCount = 0
    var eligibleCount = 0

    static let empty = RoutingPlan(policy: .roundRobin)

    /// - Parameters:
    ///   - nodes: every known node.
    ///   - locality: the region planner, or nil for one pool.
    ///   - panicThreshold: panic when usable < threshold × eligible.
    ///   - regionLatency: measured latency to each region, for spill order.
    static func make(
        nodes: [NodeStatus], policy: PolicyKind, locality: LocalityPlanner?, panicThreshold: Double,
        regionLatency: [String: Duration] = [:], hashBalanceFactor: Double = ConsistentHashPolicy.defaultBalanceFactor
    ) -> RoutingPlan {
        let eligible = nodes.filter(\.isEligible).sorted { $0.id < $1.id }
        let usable = eligible.filter(\.isUsable)
        var plan = RoutingPlan(policy: policy, usableCount: usable.count, eligibleCount: eligible.count)
        plan.hashBalanceFactor = hashBalanceFactor
        plan.panic = !eligible.isEmpty && Double(usable.count) < panicThreshold * Double(eligible.count)

        if plan.panic {
            plan.tiers = [Tier(region: "", share: 1, members: eligible.map { member($0, slowStart: false) })]
            return plan
        }
        guard !usable.isEmpty else { return plan }
        guard let locality, !locality.localRegion.isEmpty else {
            plan.tiers = [Tier(region: "", share: 1, members: usable.map { member($0, slowStart: true) })]
            return plan
        }
        // A region's total is every registered node's weight: drained, down and failing nodes are
        // capacity the region lost, which is what makes it spill.
        var regions: [String: LocalityPlanner.Region] = [:]
        for node in nodes {
            let name = node.node.region
            var region = regions[name] ?? LocalityPlanner.Region(name: name, totalWeight: 0, usableWeight: 0, latency: regionLatency[name])
            region.totalWeight += Double(node.effectiveWeight)
            if node.isUsable { region.usableWeight += Double(node.effectiveWeight) }
            regions[name] = region
        }
        for share in locality.shares(Array(regions.values)) {
            let members = usable.filter { $0.node.region == share.region }.map { member($0, slowStart: true) }
            plan.tiers.append(Tier(region: share.region, share: share.share, members: members))
        }
        return plan
    }

    private static func member(_ status: NodeStatus, slowStart: Bool) -> Member {
        Member(target: status.node.target, weight: status.effectiveWeight, slowStart: slowStart ? status.slowStart : nil)
    }
}

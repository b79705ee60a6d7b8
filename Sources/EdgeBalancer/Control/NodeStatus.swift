import GatewayCore

/// Everything the balancer knows about one node at one moment: what discovery says, what operators set,
/// and what health checking found. Routing plans and the admin API are made from these.
struct NodeStatus: Sendable, Equatable {
    var node: NodeDescriptor
    var weightOverride: Int?
    /// Drained by an operator (the admin API or gatewayctl).
    var drained: Bool = false
    /// The active check's verdict (true when checks are off).
    var activeHealthy: Bool = true
    /// Set while passive outlier detection has the node ejected.
    var ejectedUntil: Instant?
    /// Set while the node ramps up after joining or recovering.
    var slowStart: SlowStart?

    var id: String { node.id }

    /// The operator's override if set, else the advertised (or configured) weight.
    var effectiveWeight: Int { weightOverride ?? node.baseWeight }

    /// Registered and allowed new requests: the agent says up, no operator drained it, weight above zero.
    var isEligible: Bool {
        node.state == .up && node.health != .down && !drained && effectiveWeight > 0
    }

    /// Eligible, passing active checks and not ejected.
    var isUsable: Bool {
        isEligible && activeHealthy && ejectedUntil == nil
    }
}

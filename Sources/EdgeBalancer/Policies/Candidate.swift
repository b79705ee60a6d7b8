import GatewayCore

/// A node as a policy sees it: fixed for the life of a routing table, except for its live ``NodeLoad``.
struct Candidate: Sendable {
    /// The node's position in its tier; stable for the table's lifetime.
    let slot: Int
    let target: UpstreamTarget
    /// The effective weight (operator override, else advertised), above zero.
    let weight: Double
    /// Set while the node is ramping up after joining or recovering.
    let slowStart: SlowStart?
    /// In-flight requests and the latency estimate, shared with every table that holds this node.
    let load: NodeLoad

    var id: String { target.id }

    init(slot: Int, target: UpstreamTarget, weight: Double, slowStart: SlowStart? = nil, load: NodeLoad) {
        self.slot = slot
        self.target = target
        self.weight = weight
        self.slowStart = slowStart
        self.load = load
    }

    /// The weight at `now`, reduced while slow start lasts.
    func weight(at now: Instant) -> Double {
        guard let slowStart else { return weight }
        return weight * slowStart.factor(at: now)
    }
}

/// What the balancer knows of the cluster's configuration: the nodes and the operators' runtime changes.
///
/// The registry delivers a whole new view on every change; the controller derives routing from it.
struct ClusterView: Sendable, Equatable {
    /// By node id.
    var nodes: [String: NodeDescriptor] = [:]
    /// Operator weight overrides (`<prefix>:weights`), by node id.
    var weightOverrides: [String: Int] = [:]
    /// Nodes an operator drained (`<prefix>:drains`).
    var drains: Set<String> = []
    /// The policy an operator switched to at runtime (`<prefix>:policy`), if any.
    var policy: PolicyKind?

    init(nodes: [NodeDescriptor] = [], weightOverrides: [String: Int] = [:], drains: Set<String> = [], policy: PolicyKind? = nil) {
        self.nodes = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.weightOverrides = weightOverrides
        self.drains = drains
        self.policy = policy
    }
}

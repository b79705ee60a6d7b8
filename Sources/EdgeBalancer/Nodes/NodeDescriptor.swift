import GatewayCore

/// A node the balancer may send to, as discovered: from an agent's record in Redis or from static
/// configuration.
struct NodeDescriptor: Sendable, Hashable {
    enum Source: String, Sendable, Hashable {
        /// Registered in Redis by its node-agent.
        case registry
        /// Listed in `nodes.static`.
        case `static`
    }

    var id: String
    var address: String
    var port: Int
    var region: String
    var zone: String
    var source: Source
    /// The weight given in static configuration.
    var configuredWeight: Int?
    /// The weight the node's agent advertises.
    var advertisedWeight: Int?
    /// The agent's lifecycle state (static nodes are always `up`).
    var state: NodeState
    /// What the agent's probe of its engine found.
    var health: NodeHealth
    var healthReason: String
    /// Whether the balancer reaches it over TLS (`upstream.tls`, stamped on every node by the registry).
    var tls = false

    init(
        id: String, address: String, port: Int, region: String = "", zone: String = "", source: Source = .static,
        configuredWeight: Int? = nil, advertisedWeight: Int? = nil, state: NodeState = .up, health: NodeHealth = .up,
        healthReason: String = ""
    ) {
        self.id = id
        self.address = address
        self.port = port
        self.region = region
        self.zone = zone
        self.source = source
        self.configuredWeight = configuredWeight
        self.advertisedWeight = advertisedWeight
        self.state = state
        self.health = health
        self.healthReason = healthReason
    }

    /// A node from its agent's record.
    init(record: NodeRecord) {
        self.init(
            id: record.id, address: record.address, port: record.port, region: record.region, zone: record.zone,
            source: .registry, advertisedWeight: record.weight, state: record.state, health: record.health,
            healthReason: record.healthReason)
    }

    var target: UpstreamTarget { UpstreamTarget(id: id, host: address, port: port, tls: tls) }

    /// The weight before any operator override: advertised, else configured, else 100.
    var baseWeight: Int { advertisedWeight ?? configuredWeight ?? 100 }
}

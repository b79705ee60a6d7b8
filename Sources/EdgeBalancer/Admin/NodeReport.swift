/// One node as `GET /nodes` shows it.
struct NodeReport: Sendable, Codable, Equatable {
    struct Health: Sendable, Codable, Equatable {
        /// What the agent reports: its state (`up`, `draining`, `down`) and its probe of the engine.
        var agentState: String
        var agentHealth: String
        var agentReason: String
        /// `healthy`, `unhealthy`, or `off`.
        var active: String
        /// `ok` or `ejected`.
        var passive: String
        var ejectedForMilliseconds: Int?

        enum CodingKeys: String, CodingKey {
            case agentState = "agent_state", agentHealth = "agent_health", agentReason = "agent_reason", active, passive
            case ejectedForMilliseconds = "ejected_for_ms"
        }

        /// Absent values are written as `null`, so every field is always there.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(agentState, forKey: .agentState)
            try c.encode(agentHealth, forKey: .agentHealth)
            try c.encode(agentReason, forKey: .agentReason)
            try c.encode(active, forKey: .active)
            try c.encode(passive, forKey: .passive)
            try c.encode(ejectedForMilliseconds, forKey: .ejectedForMilliseconds)
        }
    }

    struct Weights: Sendable, Codable, Equatable {
        /// From `nodes.static`.
        var configured: Int?
        /// From the agent's record.
        var advertised: Int?
        /// The operator's override.
        var override: Int?
        /// What routing uses: override, else advertised, else configured.
        var effective: Int
        /// Effective × slow-start factor, right now.
        var current: Double

        /// Absent weights are written as `null`, so every field is always there.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(configured, forKey: .configured)
            try c.encode(advertised, forKey: .advertised)
            try c.encode(override, forKey: .override)
            try c.encode(effective, forKey: .effective)
            try c.encode(current, forKey: .current)
        }
    }

    var id: String
    var address: String
    var port: Int
    var region: String
    var zone: String
    var source: String
    var drained: Bool
    var eligible: Bool
    var usable: Bool
    var health: Health
    var weight: Weights
    var ewmaMilliseconds: Double
    var inFlight: Int
    var ejections: Int
    var probeMilliseconds: Double?
    var slowStart: Bool

    enum CodingKeys: String, CodingKey {
        case id, address, port, region, zone, source, drained, eligible, usable, health, weight
        case ewmaMilliseconds = "ewma_ms", inFlight = "in_flight", ejections, probeMilliseconds = "probe_ms"
        case slowStart = "slow_start"
    }

    /// Absent values are written as `null`, so every field is always there.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(address, forKey: .address)
        try c.encode(port, forKey: .port)
        try c.encode(region, forKey: .region)
        try c.encode(zone, forKey: .zone)
        try c.encode(source, forKey: .source)
        try c.encode(drained, forKey: .drained)
        try c.encode(eligible, forKey: .eligible)
        try c.encode(usable, forKey: .usable)
        try c.encode(health, forKey: .health)
        try c.encode(weight, forKey: .weight)
        try c.encode(ewmaMilliseconds, forKey: .ewmaMilliseconds)
        try c.encode(inFlight, forKey: .inFlight)
        try c.encode(ejections, forKey: .ejections)
        try c.encode(probeMilliseconds, forKey: .probeMilliseconds)
        try c.encode(slowStart, forKey: .slowStart)
    }
}

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
}

/// The body of `GET /nodes`.
struct NodesReport: Sendable, Codable, Equatable {
    var region: String
    var policy: String
    var policySource: String
    var panic: Bool
    var generation: Int
    var usable: Int
    var eligible: Int
    var tiers: [TierReport]
    var nodes: [NodeReport]

    struct TierReport: Sendable, Codable, Equatable {
        var region: String
        var share: Double
        var nodes: [String]
    }

    enum CodingKeys: String, CodingKey {
        case region, policy, policySource = "policy_source", panic, generation, usable, eligible, tiers, nodes
    }
}

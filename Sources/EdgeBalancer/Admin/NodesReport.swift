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

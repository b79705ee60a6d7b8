/// Which policy picks a node for each request.
enum PolicyKind: String, Sendable, CaseIterable, Codable {
    /// Each usable node in turn.
    case roundRobin = "round_robin"
    /// NGINX's smooth weighted round-robin: shares follow weights, without bursts to the heaviest node.
    case weighted
    /// Power of two choices on in-flight requests divided by weight.
    case leastRequest = "least_request"
    /// Power of two choices on peak-EWMA latency × (in-flight + 1) / weight.
    case peakEWMA = "peak_ewma"
    /// Consistent hashing of a request key (`hash.key`) with bounded loads: a key stays on its node.
    case consistentHash = "consistent_hash"

    /// A fresh policy for a tier of `candidates`; `balanceFactor` bounds a node's load under
    /// consistent hashing.
    func makePolicy(candidates: [Candidate], balanceFactor: Double = ConsistentHashPolicy.defaultBalanceFactor) -> any BalancingPolicy {
        switch self {
        case .roundRobin: return RoundRobinPolicy()
        case .weighted: return SmoothWeightedPolicy(count: candidates.count)
        case .leastRequest: return LeastRequestPolicy()
        case .peakEWMA: return PeakEWMAPolicy()
        case .consistentHash: return ConsistentHashPolicy(candidates: candidates, balanceFactor: balanceFactor)
        }
    }
}

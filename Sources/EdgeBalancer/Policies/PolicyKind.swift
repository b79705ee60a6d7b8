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

    /// A fresh policy for a tier of `count` candidates.
    func makePolicy(count: Int) -> any BalancingPolicy {
        switch self {
        case .roundRobin: return RoundRobinPolicy()
        case .weighted: return SmoothWeightedPolicy(count: count)
        case .leastRequest: return LeastRequestPolicy()
        case .peakEWMA: return PeakEWMAPolicy()
        }
    }
}

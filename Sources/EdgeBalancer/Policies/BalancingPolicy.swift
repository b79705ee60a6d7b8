import GatewayCore

/// The instant type every balancing decision is made at (injected so tests control time).
typealias Instant = ContinuousClock.Instant

/// Which policy picks a node for each request.
public enum PolicyKind: String, Sendable, CaseIterable, Codable {
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

/// Picks one node for a request from an immutable list of candidates.
///
/// A policy value belongs to one frozen routing table: its state (a round-robin position, smooth
/// weighted scores) is indexed by ``Candidate/slot``, which the table fixes for its lifetime. A change
/// of the node set builds a new table with fresh policies instead of editing this one. Time and
/// randomness come in as arguments, so a policy is deterministic under test.
protocol BalancingPolicy: Sendable {
    var kind: PolicyKind { get }

    /// The index in `candidates` (never empty) of the node to use.
    ///
    /// `candidates` is the tier's full list, or a subset of it (a retry excludes the node that failed);
    /// either way each candidate keeps its ``Candidate/slot``.
    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, random: inout R) -> Int
}

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

extension RandomNumberGenerator {
    /// Two distinct indices in `0..<count` (count ≥ 2), uniformly.
    mutating func twoDistinct(below count: Int) -> (Int, Int) {
        let a = Int.random(in: 0..<count, using: &self)
        var b = Int.random(in: 0..<(count - 1), using: &self)
        if b >= a { b += 1 }
        return (a, b)
    }
}

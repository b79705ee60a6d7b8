import GatewayCore

/// The instant type every balancing decision is made at (injected so tests control time).
typealias Instant = ContinuousClock.Instant

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
    /// either way each candidate keeps its ``Candidate/slot``. `hash`: the request's key, for a policy
    /// that keeps keys on nodes (``ConsistentHashPolicy``); the others ignore it.
    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, hash: UInt64?, random: inout R) -> Int
}

extension BalancingPolicy {
    /// A pick for a request without a key.
    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, random: inout R) -> Int {
        pick(from: candidates, now: now, hash: nil, random: &random)
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

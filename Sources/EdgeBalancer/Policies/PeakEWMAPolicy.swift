/// Latency-aware: of two random candidates, the one with the lower
/// `peak-EWMA latency × (in-flight + 1) / weight`.
///
/// The in-flight factor keeps identical nodes near-equal (the busier one costs more), the peak-EWMA makes
/// a node that turns slow lose share at once, and an idle node's estimate decays toward zero so it comes
/// back into contention (see ``PeakEWMA``).
struct PeakEWMAPolicy: BalancingPolicy {
    var kind: PolicyKind { .peakEWMA }

    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, hash: UInt64?, random: inout R) -> Int {
        guard candidates.count > 1 else { return 0 }
        let (a, b) = random.twoDistinct(below: candidates.count)
        let costA = Self.cost(candidates[a], now: now)
        let costB = Self.cost(candidates[b], now: now)
        if costA == costB { return Bool.random(using: &random) ? a : b }
        return costA < costB ? a : b
    }

    static func cost(_ candidate: Candidate, now: Instant) -> Double {
        candidate.load.latency(at: now) * Double(candidate.load.inFlight + 1) / candidate.weight(at: now)
    }
}

/// Least request with the power of two choices: of two random candidates, the one with fewer requests in
/// flight per unit of weight. Two random picks avoid the herd that "always the least loaded" causes when
/// many balancers see the same counts.
struct LeastRequestPolicy: BalancingPolicy {
    var kind: PolicyKind { .leastRequest }

    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, hash: UInt64?, random: inout R) -> Int {
        guard candidates.count > 1 else { return 0 }
        let (a, b) = random.twoDistinct(below: candidates.count)
        let costA = Double(candidates[a].load.inFlight + 1) / candidates[a].weight(at: now)
        let costB = Double(candidates[b].load.inFlight + 1) / candidates[b].weight(at: now)
        if costA == costB { return Bool.random(using: &random) ? a : b }
        return costA < costB ? a : b
    }
}

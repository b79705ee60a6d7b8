/// NGINX's smooth weighted round-robin.
///
/// Each pick adds every candidate's weight to its score, takes the highest score and subtracts the total
/// weight from it. Shares follow weights exactly over a cycle, and the heaviest node's picks are spread
/// out: weights 5, 1, 1 give `a a b a c a a`, never five `a`s in a row. Weights are read at pick time, so
/// slow start ramps a node's share smoothly.
struct SmoothWeightedPolicy: BalancingPolicy {
    var kind: PolicyKind { .weighted }
    /// Running scores, by candidate slot.
    private var scores: [Double]

    init(count: Int) {
        scores = Array(repeating: 0, count: max(count, 0))
    }

    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, hash: UInt64?, random: inout R) -> Int {
        var total = 0.0
        var best = 0
        var bestScore = -Double.infinity
        for (i, candidate) in candidates.enumerated() {
            if candidate.slot >= scores.count {
                scores.append(contentsOf: repeatElement(0, count: candidate.slot - scores.count + 1))
            }
            let weight = candidate.weight(at: now)
            scores[candidate.slot] += weight
            total += weight
            if scores[candidate.slot] > bestScore {
                bestScore = scores[candidate.slot]
                best = i
            }
        }
        scores[candidates[best].slot] -= total
        return best
    }
}

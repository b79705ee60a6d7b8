/// Each usable node in turn, ignoring weights.
///
/// A node in slow start is passed over with probability 1 − its ramp factor, so it still ramps up.
struct RoundRobinPolicy: BalancingPolicy {
    var kind: PolicyKind { .roundRobin }
    private var position: UInt = 0

    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, hash: UInt64?, random: inout R) -> Int {
        let count = UInt(candidates.count)
        var index = 0
        for _ in 0..<count {
            index = Int(position % count)
            position &+= 1
            guard let slowStart = candidates[index].slowStart else { return index }
            let factor = slowStart.factor(at: now)
            if factor >= 1 || Double.random(in: 0..<1, using: &random) < factor { return index }
        }
        return index
    }
}

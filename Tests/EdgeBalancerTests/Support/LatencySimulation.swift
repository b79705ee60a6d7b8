import GatewayCore
import NIOCore

@testable import EdgeBalancer

/// A discrete-event simulation of a policy under load, without sockets: `concurrency` clients each send
/// a request as soon as their previous one ends; node `i` answers after `latency(i, random)`. Time is
/// simulated, so the run is instant and, with a seeded generator, deterministic.
struct LatencySimulation {
    var latency: (Int, inout FastRandom) -> Duration
    var concurrency: Int
    var requests: Int
    var seed: UInt64 = 1

    /// How many requests each node got.
    func run(policy: PolicyKind, candidates: [Candidate], start: ContinuousClock.Instant) -> [Int] {
        var random = FastRandom(seed: seed)
        var policyState = policy.makePolicy(candidates: candidates)
        var counts = Array(repeating: 0, count: candidates.count)
        // (completion time, node, latency)
        var pending: [(ContinuousClock.Instant, Int, Duration)] = []
        var now = start
        var sent = 0

        func send() {
            let index = policyState.pick(from: candidates, now: now, random: &random)
            candidates[index].load.requestStarted()
            counts[index] += 1
            sent += 1
            let rtt = latency(index, &random)
            pending.append((now + rtt, index, rtt))
        }

        for _ in 0..<concurrency where sent < requests { send() }
        while !pending.isEmpty {
            let next = pending.indices.min { pending[$0].0 < pending[$1].0 }!
            let (time, index, rtt) = pending.remove(at: next)
            now = time
            candidates[index].load.requestFinished()
            candidates[index].load.observe(.nanoseconds(Int64((rtt / .nanoseconds(1)).rounded())), at: now)
            if sent < requests { send() }
        }
        return counts
    }
}

/// Latency around `base` (±30%), with an occasional spike of up to 20 ms (2% of requests).
func noisyLatency(_ base: Duration, random: inout FastRandom) -> Duration {
    var value = base * Double.random(in: 0.7..<1.3, using: &random)
    if Double.random(in: 0..<1, using: &random) < 0.02 {
        value += .milliseconds(20) * Double.random(in: 0..<1, using: &random)
    }
    return value
}

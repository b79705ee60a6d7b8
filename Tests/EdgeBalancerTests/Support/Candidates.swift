import GatewayCore

@testable import EdgeBalancer

/// Candidates for policy tests: ids `a`, `b`, `c`, … on made-up ports.
func makeCandidates(
    weights: [Double], now: ContinuousClock.Instant, ewma: PeakEWMA.Configuration = .init(), slowStart: [Int: SlowStart] = [:]
) -> [Candidate] {
    weights.enumerated().map { index, weight in
        let id = String(UnicodeScalar(UInt8(97 + index)))
        return Candidate(
            slot: index, target: UpstreamTarget(id: id, host: "127.0.0.1", port: 10_000 + index), weight: weight,
            slowStart: slowStart[index], load: NodeLoad(id: id, ewma: ewma, now: now))
    }
}

/// Counts picks per candidate id.
func shares(_ picks: [String]) -> [String: Double] {
    var counts: [String: Int] = [:]
    for id in picks { counts[id, default: 0] += 1 }
    return counts.mapValues { Double($0) / Double(picks.count) }
}

/// The longest run of `id` in `picks`.
func longestRun(of id: String, in picks: [String]) -> Int {
    var best = 0
    var run = 0
    for pick in picks {
        run = pick == id ? run + 1 : 0
        best = max(best, run)
    }
    return best
}

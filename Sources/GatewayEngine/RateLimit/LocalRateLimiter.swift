import NIOConcurrencyHelpers

/// In-process GCRA used while Redis is unreachable by APIs that fail open.
///
/// Each engine admits `rate ÷ live nodes` (and `burst ÷ live nodes`, at least 1), so the cluster as a
/// whole stays near the configured rate while the shared state is out of reach. Quotas are not enforced
/// here: a count only Redis holds cannot be split exactly.
final class LocalRateLimiter: Sendable {
    private struct State {
        var tats: [String: Int64] = [:]
        var decisionsSinceSweep = 0
    }

    private let state = NIOLockedValueBox(State())
    private let nowMicroseconds: @Sendable () -> Int64
    private let maxClients: Int

    /// - Parameters:
    ///   - maxClients: clients tracked before idle ones are swept out.
    ///   - now: a monotonic clock in microseconds, injectable for tests.
    init(maxClients: Int = 100_000, now: (@Sendable () -> Int64)? = nil) {
        self.maxClients = maxClients
        self.nowMicroseconds =
            now ?? {
                let d = ContinuousClock.now - LocalRateLimiter.epoch
                return d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
            }
    }

    private static let epoch = ContinuousClock.now

    /// Decides for `key` under `policy`, sharing the rate with `liveNodes` engines.
    func decide(key: String, policy: RateLimitPolicy, liveNodes: Int) -> RateLimitDecision {
        let nodes = max(1, liveNodes)
        let interval = policy.emissionIntervalMicroseconds * Int64(nodes)
        let burst = max(1, policy.burst / nodes)
        let now = nowMicroseconds()
        let outcome = state.withLockedValue { state -> GCRA.Outcome in
            let outcome = GCRA.decide(tat: state.tats[key], now: now, emissionInterval: interval, burst: burst)
            if outcome.allowed { state.tats[key] = outcome.newTAT }
            state.decisionsSinceSweep += 1
            if state.tats.count > maxClients || state.decisionsSinceSweep >= 10_000 {
                state.decisionsSinceSweep = 0
                state.tats = state.tats.filter { $0.value > now }
                if state.tats.count > maxClients { state.tats.removeAll() }
            }
            return outcome
        }
        return RateLimitDecision(
            outcome: outcome.allowed ? .allowed : .limited(.rate), source: .local, limit: burst,
            remaining: outcome.remaining, retryAfter: .microseconds(outcome.retryAfterMicroseconds),
            reset: .microseconds(outcome.resetMicroseconds), quotaRemaining: nil)
    }

    var trackedClients: Int { state.withLockedValue { $0.tats.count } }
}

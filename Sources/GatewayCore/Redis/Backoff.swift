/// Exponential backoff with jitter: the n-th consecutive failure waits between half and all of
/// `initial × 2^(n-1)`, capped at `maximum`, so many clients that lost Redis together do not come back
/// in lockstep.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = max(initial, maximum)
    }

    /// The delay before the next attempt after `failures` consecutive failures (1 for the first).
    ///
    /// - Parameters:
    ///   - failures: consecutive failures so far, at least 1.
    ///   - unitRandom: a number in `0..<1` (injected, so tests are deterministic).
    public func delay(afterFailures failures: Int, unitRandom: Double) -> Duration {
        let exponent = min(max(failures - 1, 0), 30)
        let base = min(initial.seconds * Double(1 << exponent), maximum.seconds)
        let jittered = base * (0.5 + 0.5 * min(max(unitRandom, 0), 1))
        return .nanoseconds(Int64(jittered * 1e9))
    }

    /// The delay with jitter drawn from the system's generator.
    public func delay(afterFailures failures: Int) -> Duration {
        delay(afterFailures: failures, unitRandom: Double.random(in: 0..<1))
    }
}

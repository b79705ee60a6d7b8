import GatewayCore
import Testing

/// Reconnect delays: exponential, capped, jittered between half and all of the step.
@Suite("Backoff", .timeLimit(.minutes(1)))
struct BackoffTests {
    let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))

    /// Within 1 µs: the delay is computed in floating point.
    func expectClose(_ actual: Duration, _ expected: Duration, sourceLocation: SourceLocation = #_sourceLocation) {
        let difference = actual > expected ? actual - expected : expected - actual
        #expect(difference < .microseconds(1), "\(actual) is not \(expected)", sourceLocation: sourceLocation)
    }

    /// The step doubles with each consecutive failure (at the top of the jitter range).
    @Test func stepDoublesPerFailure() {
        expectClose(backoff.delay(afterFailures: 1, unitRandom: 1), .milliseconds(100))
        expectClose(backoff.delay(afterFailures: 2, unitRandom: 1), .milliseconds(200))
        expectClose(backoff.delay(afterFailures: 3, unitRandom: 1), .milliseconds(400))
        expectClose(backoff.delay(afterFailures: 4, unitRandom: 1), .milliseconds(800))
        expectClose(backoff.delay(afterFailures: 5, unitRandom: 1), .milliseconds(1600))
    }

    /// Jitter spreads the delay between half the step (random 0) and the whole step.
    @Test func jitterSpansHalfToWholeStep() {
        expectClose(backoff.delay(afterFailures: 3, unitRandom: 0), .milliseconds(200))
        expectClose(backoff.delay(afterFailures: 3, unitRandom: 0.5), .milliseconds(300))
        expectClose(backoff.delay(afterFailures: 3, unitRandom: 0.25), .milliseconds(250))
        // Out-of-range randoms are clamped, never giving less than half or more than the step.
        expectClose(backoff.delay(afterFailures: 3, unitRandom: -4), .milliseconds(200))
        expectClose(backoff.delay(afterFailures: 3, unitRandom: 9), .milliseconds(400))
    }

    /// The step stops growing at the maximum, even after absurdly many failures.
    @Test func stepIsCappedAtMaximum() {
        expectClose(backoff.delay(afterFailures: 6, unitRandom: 1), .seconds(2))
        expectClose(backoff.delay(afterFailures: 40, unitRandom: 1), .seconds(2))
        expectClose(backoff.delay(afterFailures: Int.max, unitRandom: 0), .seconds(1))
    }

    /// Zero or negative failure counts are treated as the first failure.
    @Test func nonPositiveFailuresCountAsFirst() {
        expectClose(backoff.delay(afterFailures: 0, unitRandom: 1), .milliseconds(100))
        expectClose(backoff.delay(afterFailures: -3, unitRandom: 1), .milliseconds(100))
    }

    /// A maximum below the initial delay is raised to it.
    @Test func maximumIsAtLeastInitial() {
        let odd = Backoff(initial: .seconds(1), maximum: .milliseconds(10))
        #expect(odd.maximum == .seconds(1))
        expectClose(odd.delay(afterFailures: 5, unitRandom: 1), .seconds(1))
    }

    /// With the system's random numbers every delay stays within the jitter range.
    @Test func systemRandomStaysInRange() {
        for failures in 1...8 {
            let step = min(Duration.milliseconds(100) * (1 << (failures - 1)), .seconds(2))
            for _ in 0..<50 {
                let delay = backoff.delay(afterFailures: failures)
                #expect(delay >= step / 2 - .microseconds(1) && delay <= step + .microseconds(1))
            }
        }
    }
}

import Synchronization

@testable import EdgeBalancer

/// A clock a test moves by hand.
final class TestClock: Sendable {
    let origin = ContinuousClock.now
    private let offset = Mutex<Duration>(.zero)

    var now: ContinuousClock.Instant { origin + offset.withLock { $0 } }

    func advance(by duration: Duration) {
        offset.withLock { $0 += duration }
    }

    func set(_ elapsed: Duration) {
        offset.withLock { $0 = elapsed }
    }

    var source: @Sendable () -> ContinuousClock.Instant { { self.now } }
}

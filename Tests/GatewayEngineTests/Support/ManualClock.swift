import Foundation
import Synchronization

/// A clock the test moves by hand: monotonic instants for caches and balancers, a wall-clock `Date` for
/// expiries, microseconds for the local rate limiter.
final class ManualClock: Sendable {
    private let base = ContinuousClock.now
    private let baseDate = Date()
    private let offset = Mutex<Duration>(.zero)

    var now: ContinuousClock.Instant { base.advanced(by: offset.withLock { $0 }) }

    var date: Date {
        let d = offset.withLock { $0 }
        return baseDate.addingTimeInterval(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }

    var microseconds: Int64 {
        let d = offset.withLock { $0 }
        return 1_000_000_000 + d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

    func advance(by duration: Duration) {
        offset.withLock { $0 += duration }
    }

    var instantSource: @Sendable () -> ContinuousClock.Instant { { self.now } }
    var dateSource: @Sendable () -> Date { { self.date } }
    var microsecondSource: @Sendable () -> Int64 { { self.microseconds } }
}

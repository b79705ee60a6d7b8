import NIOCore
import Synchronization

/// The live state of one node that requests update as they run: requests in flight and the latency
/// estimate, plus its metrics.
///
/// One instance per node id lives as long as the node is known; every routing table that holds the node
/// shares it, so a table swap loses neither counts nor history. Updated from any event loop.
final class NodeLoad: Sendable {
    let id: String
    let metrics: NodeMetrics
    private let inFlightCount = Atomic<Int>(0)
    private let estimator: Mutex<PeakEWMA>

    init(id: String, ewma: PeakEWMA.Configuration, now: Instant) {
        self.id = id
        self.metrics = NodeMetrics(node: id)
        self.estimator = Mutex(PeakEWMA(configuration: ewma, now: now))
    }

    /// Requests sent to this node that have not finished.
    var inFlight: Int { max(0, inFlightCount.load(ordering: .relaxed)) }

    func requestStarted() {
        inFlightCount.add(1, ordering: .relaxed)
    }

    func requestFinished() {
        inFlightCount.subtract(1, ordering: .relaxed)
    }

    /// The peak-EWMA latency estimate at `now`, in seconds.
    func latency(at now: Instant) -> Double {
        estimator.withLock { $0.value(at: now) }
    }

    /// Records one response time.
    func observe(_ responseTime: TimeAmount, at now: Instant) {
        let seconds = Double(responseTime.nanoseconds) / 1e9
        estimator.withLock { $0.observe(seconds, at: now) }
    }
}

import GatewayCore
import NIOHTTP1
import Synchronization

/// The shared ``OutlierDetector``: fed by every finished exchange on every event loop, read by the
/// controller. Ejections are announced on ``ejections`` so the controller rebuilds the routing table.
final class PassiveHealth: Sendable {
    struct Ejection: Sendable, Equatable {
        var node: String
        var until: Instant
        var ejections: Int
    }

    private let detector: Mutex<OutlierDetector>
    /// The detector's ``OutlierDetector/nodesWithFailures``, stored under its lock after every change, so
    /// the usual exchange (a success while no node has failures to reset) is recorded without taking
    /// the lock every event loop shares.
    private let nodesWithFailures = Atomic<Int>(0)
    /// Every ejection, as it happens.
    let ejections: AsyncStream<Ejection>
    private let continuation: AsyncStream<Ejection>.Continuation

    init(configuration: OutlierDetector.Configuration) {
        detector = Mutex(OutlierDetector(configuration: configuration))
        (ejections, continuation) = AsyncStream.makeStream(of: Ejection.self, bufferingPolicy: .bufferingNewest(1024))
    }

    /// Records how an exchange ended (nothing for outcomes that say nothing about the node).
    func record(_ outcome: ProxyOutcome, now: Instant) {
        guard let classified = Self.classify(outcome) else { return }
        record(classified, node: outcome.target.id, now: now)
    }

    func record(_ outcome: OutlierDetector.Outcome, node: String, now: Instant) {
        // A success read against a count that a concurrent failure is about to raise is one that came
        // first: recording it would change nothing either.
        if outcome == .success && nodesWithFailures.load(ordering: .relaxed) == 0 { return }
        let action = detector.withLock { detector in
            defer { nodesWithFailures.store(detector.nodesWithFailures, ordering: .relaxed) }
            return detector.record(outcome, node: node, now: now)
        }
        if case .eject(let node, let until, let count) = action {
            continuation.yield(Ejection(node: node, until: until, ejections: count))
        }
    }

    func setNodes(_ ids: Set<String>) {
        detector.withLock { detector in
            detector.setNodes(ids)
            nodesWithFailures.store(detector.nodesWithFailures, ordering: .relaxed)
        }
    }

    func expire(now: Instant) -> [String] {
        detector.withLock { detector in
            defer { nodesWithFailures.store(detector.nodesWithFailures, ordering: .relaxed) }
            return detector.expire(now: now)
        }
    }

    func ejectedUntil(_ node: String, now: Instant) -> Instant? {
        detector.withLock { $0.ejectedUntil(node, now: now) }
    }

    func totalEjections(_ node: String) -> Int {
        detector.withLock { $0.totalEjections(node) }
    }

    func finish() {
        continuation.finish()
    }

    /// Failure for connect errors, resets, timeouts and 5xx; success for other responses; nil when the
    /// client went away or the node was at the balancer's own connection limit (neither says anything
    /// about the node).
    static func classify(_ outcome: ProxyOutcome) -> OutlierDetector.Outcome? {
        if let failure = outcome.failure {
            return failure == .clientClosed || failure == .poolExhausted ? nil : .failure
        }
        guard let status = outcome.status else { return nil }
        return status.code >= 500 ? .failure : .success
    }
}

import GatewayCore
import NIOCore
import Synchronization

/// What the router remembers about a request in progress: the nodes tried, retries, the last failure.
final class RequestRecord: Sendable {
    struct Summary: Sendable {
        var node: String?
        var attempts = 0
        var retries = 0
        var failure: ProxyOutcome.Failure?
        /// The nodes tried: the first on its own, so a request that is not retried allocates no array.
        var firstTried: String?
        var laterTried: [String] = []
        var current: Attempt?

        var tried: [String] { (firstTried.map { [$0] } ?? []) + laterTried }
    }

    private let state = Mutex(Summary())

    var summary: Summary { state.withLock { $0 } }

    func started(_ attempt: Attempt, node: String) {
        state.withLock {
            $0.node = node
            $0.attempts += 1
            if $0.firstTried == nil { $0.firstTried = node } else { $0.laterTried.append(node) }
            $0.current = attempt
            $0.failure = nil
        }
    }

    func ended(failure: ProxyOutcome.Failure?) {
        state.withLock { $0.failure = failure }
    }

    /// The nodes tried so far, or nil when no retry is left.
    func triedNodes(ifRetriesBelow limit: Int) -> [String]? {
        state.withLock { $0.retries < limit ? $0.tried : nil }
    }

    func countRetry() {
        state.withLock { $0.retries += 1 }
    }

    func releaseUnfinishedAttempt() {
        guard let attempt = state.withLock({ $0.current }) else { return }
        if attempt.finish() { attempt.load.requestFinished() }
    }
}

import CoreMetrics
import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The balancer's decisions for the shared proxy front: which node gets each request, whether a failed
/// one is retried elsewhere, and what is learned from each exchange.
///
/// For every request it picks a node from the current frozen ``RoutingTable``, counts the request in
/// flight on that node until the exchange ends, and feeds the outcome to the node's latency estimate and
/// to passive outlier detection. An idempotent request whose node failed before any response byte is
/// retried once on another node, within the ``RetryBudget``. With no usable node it answers 503 with a
/// JSON body naming the request id.
///
/// Called on the connections' event loops; it never blocks and never hops threads.
final class BalancerRouter: ProxyRouter {
    struct Configuration: Sendable {
        var connectTimeout: TimeAmount = .seconds(2)
        var responseTimeout: TimeAmount = .seconds(30)
        var retries = true
        /// Retries per request (the design says once).
        var maxRetries = 1
        var retryBudget = RetryBudget.Configuration()
        /// The level of the per-request access log line, nil for none.
        var accessLogLevel: Logger.Level? = .info
    }

    let configuration: Configuration
    let tables: RoutingTableBox
    let passive: PassiveHealth
    let metrics: BalancerMetrics
    private let logger: Logger
    private let now: @Sendable () -> Instant
    private let budget: Mutex<RetryBudget>
    private let requests = Mutex<[RequestKey: RequestRecord]>([:])

    init(
        configuration: Configuration, tables: RoutingTableBox, passive: PassiveHealth, metrics: BalancerMetrics,
        logger: Logger, now: @escaping @Sendable () -> Instant = { .now }
    ) {
        self.configuration = configuration
        self.tables = tables
        self.passive = passive
        self.metrics = metrics
        self.logger = logger
        self.now = now
        self.budget = Mutex(RetryBudget(configuration: configuration.retryBudget, origin: now()))
    }

    /// Requests between decision and completion (for tests and metrics).
    var requestsInProgress: Int { requests.withLock { $0.count } }

    // MARK: ProxyRouter

    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> EventLoopFuture<ProxyDecision> {
        let now = self.now()
        if configuration.retries { budget.withLock { $0.recordRequest(now: now) } }
        guard let candidate = tables.table.pick(now: now) else {
            metrics.noUsableNode.increment()
            var response = HTTPResponse.error(.serviceUnavailable, "no usable node", requestID: request.requestID)
            response.headers.add(name: "Retry-After", value: "1")
            return eventLoop.makeSucceededFuture(.respond(response))
        }
        let record = RequestRecord()
        requests.withLock { $0[RequestKey(request)] = record }
        return eventLoop.makeSucceededFuture(.forward(plan(for: request, on: candidate, record: record)))
    }

    func retry(after failed: ForwardPlan, failure: ProxyOutcome.Failure, request: ProxyRequest) -> ForwardPlan? {
        guard configuration.retries, let record = requests.withLock({ $0[RequestKey(request)] }) else { return nil }
        guard let tried = record.triedNodes(ifRetriesBelow: configuration.maxRetries) else { return nil }
        let now = self.now()
        guard let candidate = tables.table.pick(now: now, excluding: tried) else { return nil }
        guard budget.withLock({ $0.tryRetry(now: now) }) else {
            metrics.retriesRefusedByBudget.increment()
            logger.debug("retry refused: budget spent", metadata: ["request.id": "\(request.requestID)", "node": "\(failed.target.id)"])
            return nil
        }
        metrics.retries.increment()
        record.countRetry()
        return plan(for: request, on: candidate, record: record)
    }

    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: Duration) {
        let record = requests.withLock { $0.removeValue(forKey: RequestKey(request)) }
        // Safety net: an attempt the front never reported must not stay counted in flight.
        record?.releaseUnfinishedAttempt()
        metrics.request(status: status, duration: duration)
        guard let level = configuration.accessLogLevel else { return }
        let summary = record?.summary
        logger.log(
            level: level, "request",
            metadata: [
                "request.id": "\(request.requestID)",
                "client.ip": "\(request.clientIP)",
                "http.method": "\(request.head.method.rawValue)",
                "http.path": "\(Self.path(of: request.head.uri))",
                "http.status": "\(status.code)",
                "http.bytes": "\(bytesSent)",
                "duration.ms": "\(Self.milliseconds(duration))",
                "node": "\(summary?.node ?? "-")",
                "attempts": "\(summary?.attempts ?? 0)",
                "upstream.failure": "\(summary?.failure.map { "\($0)" } ?? "-")",
            ])
    }

    // MARK: Attempts

    private func plan(for request: ProxyRequest, on candidate: Candidate, record: RequestRecord) -> ForwardPlan {
        var plan = ForwardPlan(target: candidate.target, head: request.head)
        plan.connectTimeout = configuration.connectTimeout
        plan.responseTimeout = configuration.responseTimeout
        plan.retryable = configuration.retries && request.isIdempotent
        let attempt = Attempt(load: candidate.load)
        candidate.load.requestStarted()
        record.started(attempt, node: candidate.id)
        plan.onComplete = { [self] outcome in
            self.attemptEnded(attempt, outcome: outcome, record: record)
        }
        return plan
    }

    private func attemptEnded(_ attempt: Attempt, outcome: ProxyOutcome, record: RequestRecord) {
        let now = self.now()
        let load = attempt.load
        if attempt.finish() { load.requestFinished() }
        if let ttfb = outcome.timeToFirstByte {
            load.observe(ttfb, at: now)
            load.metrics.responseTime.recordNanoseconds(ttfb.nanosecondsClamped)
        } else if outcome.failure == .responseTimeout || outcome.failure == .connectTimeout {
            load.observe(outcome.total, at: now)  // a timeout is at least this slow
        }
        passive.record(outcome, now: now)
        switch (outcome.failure, outcome.status) {
        case (nil, let status?):
            load.metrics.exchanges[StatusClass(status).index].increment()
        case (.clientClosed?, _), (nil, nil):
            break
        case (.some, _):
            load.metrics.failed.increment()
        }
        record.ended(failure: outcome.failure)
    }

    /// The path of a request target, without the query (which may carry credentials), at most 256
    /// characters.
    static func path(of uri: String) -> Substring {
        let end = uri.firstIndex(of: "?") ?? uri.endIndex
        return uri[..<end].prefix(256)
    }

    /// Milliseconds with microsecond precision, for logs.
    static func milliseconds(_ duration: Duration) -> String {
        let micros = duration.nanosecondsClamped / 1000
        let fraction = String(micros % 1000)
        return "\(micros / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

/// Identifies a request between decision and completion: its id (which a client may choose) and the
/// nanosecond it started.
struct RequestKey: Hashable, Sendable {
    var id: String
    var started: UInt64

    init(_ request: ProxyRequest) {
        id = request.requestID
        started = request.startedAt.uptimeNanoseconds
    }
}

/// One attempt of a request on one node: releases the node's in-flight count exactly once, however many
/// times the front reports the attempt.
final class Attempt: Sendable {
    let load: NodeLoad
    private let finished = Atomic<Bool>(false)

    init(load: NodeLoad) {
        self.load = load
    }

    /// True the first time only.
    func finish() -> Bool {
        !finished.exchange(true, ordering: .acquiringAndReleasing)
    }
}

/// What the router remembers about a request in progress: the nodes tried, retries, the last failure.
final class RequestRecord: Sendable {
    struct Summary: Sendable {
        var node: String?
        var attempts = 0
        var retries = 0
        var failure: ProxyOutcome.Failure?
        var tried: [String] = []
        var current: Attempt?
    }

    private let state = Mutex(Summary())

    var summary: Summary { state.withLock { $0 } }

    func started(_ attempt: Attempt, node: String) {
        state.withLock {
            $0.node = node
            $0.attempts += 1
            $0.tried.append(node)
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

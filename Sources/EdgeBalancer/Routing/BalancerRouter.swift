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
        /// What a request is hashed by under the `consistent_hash` policy.
        var hashKey = HashKey.clientIP
        /// Node answers retried like a failure (`retry.onStatus`), within the same retry and budget.
        var retryOnStatus = ServerErrorStatuses()
    }

    let configuration: Configuration
    let tables: RoutingTableBox
    let passive: PassiveHealth
    let metrics: BalancerMetrics
    private let logger: Logger
    private let now: @Sendable () -> Instant
    private let budget: ShardedRetryBudget
    /// Requests between decision and completion; their records ride on the request's annotations.
    private let inProgress = Atomic<Int>(0)

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
        self.budget = ShardedRetryBudget(configuration: configuration.retryBudget, origin: now())
    }

    /// Requests between decision and completion (for tests and metrics).
    var requestsInProgress: Int { inProgress.load(ordering: .relaxed) }

    // MARK: ProxyRouter

    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult {
        let now = self.now()
        if configuration.retries { budget.recordRequest(now: now) }
        let table = tables.table
        guard let candidate = table.pick(now: now, hash: hash(request, under: table)) else {
            metrics.noUsableNode.increment()
            var response = HTTPResponse.error(.serviceUnavailable, "no usable node", requestID: request.requestID)
            response.headers.add(name: "Retry-After", value: "1")
            return .decided(.respond(response))
        }
        let record = RequestRecord()
        request.annotations.attachment = record
        inProgress.add(1, ordering: .relaxed)
        return .decided(.forward(plan(for: request, on: candidate, record: record)))
    }

    func retry(after failed: ForwardPlan, failure: ProxyOutcome.Failure, request: ProxyRequest) -> ForwardPlan? {
        guard configuration.retries, let record = request.annotations.attachment as? RequestRecord else { return nil }
        guard let tried = record.triedNodes(ifRetriesBelow: configuration.maxRetries) else { return nil }
        let now = self.now()
        let table = tables.table
        // Under consistent hashing the retry goes to the key's next node along the ring.
        guard let candidate = table.pick(now: now, excluding: tried, hash: hash(request, under: table)) else { return nil }
        guard budget.tryRetry(now: now) else {
            metrics.retriesRefusedByBudget.increment()
            logger.debug("retry refused: budget spent", metadata: ["request.id": "\(request.requestID)", "node": "\(failed.target.id)"])
            return nil
        }
        metrics.retries.increment()
        record.countRetry()
        return plan(for: request, on: candidate, record: record)
    }

    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount) {
        let record = request.annotations.attachment as? RequestRecord
        if record != nil {
            request.annotations.attachment = nil
            inProgress.subtract(1, ordering: .relaxed)
        }
        // Safety net: an attempt the front never reported must not stay counted in flight.
        record?.releaseUnfinishedAttempt()
        metrics.request(status: status, duration: duration)
        guard let level = configuration.accessLogLevel else { return }
        let summary = record?.summary
        logger.log(
            level: level, "request",
            metadata: [
                "request.id": "\(request.requestID)",
                "client.ip": "\(request.remoteIP)",
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

    /// A tunnel's end, as an access log line of its own (its request's line, status 101, names the node).
    func tunnelClosed(_ request: ProxyRequest, closedBy: String, bytesFromClient: Int, bytesToClient: Int, duration: TimeAmount) {
        guard let level = configuration.accessLogLevel else { return }
        logger.log(
            level: level, "tunnel closed",
            metadata: [
                "request.id": "\(request.requestID)",
                "client.ip": "\(request.remoteIP)",
                "http.path": "\(Self.path(of: request.head.uri))",
                "tunnel.protocol": "\(request.upgrade ?? "-")",
                "tunnel.closed_by": "\(closedBy)",
                "tunnel.bytes_in": "\(bytesFromClient)",
                "tunnel.bytes_out": "\(bytesToClient)",
                "duration.ms": "\(Self.milliseconds(duration))",
            ])
    }

    /// The request's key under the `consistent_hash` policy; nil under the others.
    private func hash(_ request: ProxyRequest, under table: RoutingTable) -> UInt64? {
        table.plan.policy == .consistentHash ? configuration.hashKey.hash(request) : nil
    }

    // MARK: Attempts

    private func plan(for request: ProxyRequest, on candidate: Candidate, record: RequestRecord) -> ForwardPlan {
        let attempt = Attempt(load: candidate.load)
        candidate.load.requestStarted()
        record.started(attempt, node: candidate.id)
        // Built by one call (see ForwardPlan.init), not field by field.
        return ForwardPlan(
            target: candidate.target, head: request.head,
            connectTimeout: configuration.connectTimeout, responseTimeout: configuration.responseTimeout,
            retryable: configuration.retries && request.isIdempotent, retryOnStatus: configuration.retryOnStatus,
            onComplete: { [self] outcome in self.attemptEnded(attempt, outcome: outcome, record: record) })
    }

    private func attemptEnded(_ attempt: Attempt, outcome: ProxyOutcome, record: RequestRecord) {
        let now = self.now()
        let load = attempt.load
        if attempt.finish() { load.requestFinished() }
        if let ttfb = outcome.timeToFirstByte {
            load.observe(ttfb, at: now)
            load.metrics.responseTime.recordNanoseconds(ttfb.nanoseconds)
        } else if outcome.failure == .responseTimeout || outcome.failure == .connectTimeout {
            load.observe(outcome.total, at: now)  // a timeout is at least this slow
        }
        passive.record(outcome, now: now)
        switch (outcome.failure, outcome.status) {
        case (nil, let status?):
            load.metrics.exchanges[StatusClass(status).index].increment()
        case (.clientClosed?, _), (nil, nil):
            break
        case (.poolExhausted?, _):
            load.metrics.poolTimeouts.increment()
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
    static func milliseconds(_ duration: TimeAmount) -> String {
        let micros = duration.nanoseconds / 1000
        let fraction = String(micros % 1000)
        return "\(micros / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

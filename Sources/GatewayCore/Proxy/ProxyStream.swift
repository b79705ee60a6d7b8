import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The client side of an exchange: an HTTP/1.1 connection (``HTTP1FrontHandler``) or one HTTP/2 stream
/// (``HTTP2FrontHandler``). A ``ProxyStream`` writes its response through it. Called on its event loop.
protocol ProxyClient: AnyObject {
    var eventLoop: any EventLoop { get }
    /// Whether the client's connection takes more bytes now (backpressure on the upstream response).
    var isWritable: Bool { get }
    /// The response head, with `extras` added as it is written (see ``ResponseHeadExtras``).
    func sendResponseHead(_ head: ProxyResponseHead, extras: ResponseHeadExtras)
    func sendResponseBody(_ chunk: ByteBuffer)
    /// The response is complete. `close`: the HTTP/1.1 connection closes after it (request bytes may be
    /// left unread, or the client asked to close).
    func sendResponseEnd(close: Bool)
    func flushResponse()
    /// Stops or resumes delivering the request body (backpressure from the upstream connection).
    func setRequestBodyPaused(_ paused: Bool)
    /// Calls the stream's ``ProxyStream/checkResponseDeadline(now:)`` at `deadline` or a little later.
    /// The client keeps one timer for all its streams.
    func responseDeadlineSet(_ deadline: NIODeadline)
    /// The response cannot be completed: an HTTP/1.1 connection is closed, an HTTP/2 stream reset.
    func abortResponse()
    /// The backend switched protocols (the 101 head was sent): from now on the connection carries bytes
    /// both ways, each read going to ``ProxyStream/clientTunnelBytes(_:)`` (HTTP/1.1 only).
    func startTunnel()
    /// Bytes from the backend's side of a tunnel.
    func sendTunnelBytes(_ bytes: ByteBuffer)
    /// The backend's side of the tunnel closed: what was written goes out, then the connection closes.
    func closeTunnel()
}

/// What every ``ProxyStream`` of a front listener shares. A class: an HTTP/2 stream takes it with one
/// retain instead of copying (and retaining) each of its references.
final class ProxyStreamConfiguration: Sendable {
    let router: any ProxyRouter
    let pools: UpstreamPools
    let limits: ProxyLimits
    let scheme: String
    let isHTTP2: Bool
    let counters: FrontCounters
    /// Clients whose `X-Forwarded-Proto`/`-Host` are kept (``AddressRanges``).
    let trustedProxies: AddressRanges
    let logger: Logger
    /// ``ProxyRouter/recordsUpstream``, read once.
    let recordsUpstream: Bool

    init(
        router: any ProxyRouter, pools: UpstreamPools, limits: ProxyLimits, scheme: String, isHTTP2: Bool, counters: FrontCounters,
        trustedProxies: AddressRanges = AddressRanges(), logger: Logger
    ) {
        self.router = router
        self.pools = pools
        self.limits = limits
        self.scheme = scheme
        self.isHTTP2 = isHTTP2
        self.counters = counters
        self.trustedProxies = trustedProxies
        self.logger = logger
        self.recordsUpstream = router.recordsUpstream
    }

    /// The same, for HTTP/2 streams.
    func forHTTP2() -> ProxyStreamConfiguration {
        ProxyStreamConfiguration(
            router: router, pools: pools, limits: limits, scheme: scheme, isHTTP2: true, counters: counters, trustedProxies: trustedProxies,
            logger: logger)
    }
}

/// Serves the requests of one HTTP/1.1 connection (one at a time) or one HTTP/2 stream: asks the
/// router what to do with each request, answers locally or forwards to a backend over a pooled
/// keep-alive connection, streaming bodies both ways with backpressure, and retries a failed idempotent
/// request on another backend when no response byte has gone back yet.
///
/// It knows nothing of the client's wire protocol: the front handler parses requests and feeds them in
/// (``requestHead(_:)``, ``requestBody(_:)``, ``requestEnd()``), and the response goes out through its
/// ``ProxyClient``. The client holds the stream and the stream the client until ``clientClosed()``.
final class ProxyStream<Client: ProxyClient>: UpstreamExchangeDelegate {
    /// Where one request is.
    private enum Phase {
        /// Waiting for the router's decision; body parts are held.
        case deciding
        /// Waiting for an upstream connection; body parts are held.
        case connecting
        /// The request is going to (and the response coming from) a backend.
        case forwarding
        /// A local answer is being written.
        case respondingLocally
        /// The backend switched protocols: bytes go both ways until either side closes.
        case tunneling
    }

    /// The state of the request in progress.
    private final class Exchange {
        let request: ProxyRequest
        var phase: Phase = .deciding
        var pendingBody: [ByteBuffer] = []
        /// The body so far, kept while the request may be replayed on another backend; nil once too big.
        var replayBody: [ByteBuffer]?
        var bodyBytes = 0
        /// The most body bytes taken: the listener's limit, or a plan's lower one once decided.
        var maxBodyBytes: Int
        var requestEnded = false
        var wantsKeepAlive: Bool
        var requestIsChunked: Bool
        var plan: ForwardPlan?
        var upstream: UpstreamConnection?
        var upstreamReused = false
        var responseStarted = false
        var responseStatus: HTTPResponseStatus?
        var bytesSent = 0
        var requestSentAt: NIODeadline?
        var firstByteAt: NIODeadline?
        /// When the response head must have arrived by (set once the request is fully sent).
        var responseDeadline: NIODeadline?
        var timedOut = false
        var attempts = 0
        var closeAfterResponse = false
        /// A tunnel's bytes from the client; the backend's are counted on in ``bytesSent``.
        var tunnelBytesIn = 0
        var tunnelStartedAt: NIODeadline?

        init(request: ProxyRequest, wantsKeepAlive: Bool, requestIsChunked: Bool, maxBodyBytes: Int) {
            self.request = request
            self.wantsKeepAlive = wantsKeepAlive
            self.requestIsChunked = requestIsChunked
            self.maxBodyBytes = maxBodyBytes
        }
    }

    private let configuration: ProxyStreamConfiguration
    /// Strong until ``clientClosed()``: the client holds this stream, and the stream its client.
    private var client: Client?
    private let eventLoop: any EventLoop
    private var exchange: Exchange?
    private let clientIP: String
    /// The client is in ``ProxyStreamConfiguration/trustedProxies``.
    private let clientTrusted: Bool
    /// The upstream pool of this stream's event loop, looked up once.
    private let loopPool: UpstreamLoopPool

    init(configuration: ProxyStreamConfiguration, client: Client, clientIP: String) {
        self.configuration = configuration
        self.client = client
        self.eventLoop = client.eventLoop
        self.clientIP = clientIP
        // Once per stream (an HTTP/1.1 connection's whole life), and only when proxies are configured.
        self.clientTrusted = !configuration.trustedProxies.isEmpty && configuration.trustedProxies.contains(clientIP)
        self.loopPool = configuration.pools.pool(for: client.eventLoop)
    }

    // MARK: - Inbound from the client

    /// A request begins. `head` comes without hop-by-hop headers; `info` says what they said.
    /// `endsHere`: the request has no body (its end may still be reported, and is then ignored), so an
    /// answer given at once does not have to close an HTTP/1.1 connection for unread bytes. `upgrade`:
    /// the protocol an HTTP/1.1 request asks to switch to (``ProxyRequest/upgrade``).
    func requestHead(_ head: consuming HTTPRequestHead, info: HTTP1HeadInfo, endsHere: Bool, upgrade: String? = nil) {
        let requestID = RequestID.accept(info.requestID)
        let host = info.host ?? ""
        let version = head.version
        let headBytes = info.headerBytes ?? Self.headerBytes(head)
        var head = consume head  // taken over: the client's forwarded fields are removed in place, not from a copy
        let forwarded = HopByHop.takeForwarded(
            &head.headers, clientIP: clientIP, scheme: configuration.scheme, host: host, requestID: requestID,
            replacing: info.hasForwardedHeaders || info.requestID != nil,
            trustingClient: info.hasForwardedHeaders && clientTrusted)
        // Behind trusted proxies (balancers, say), per-client limits and logs go by the original client.
        let forwardedClientIP =
            clientTrusted && info.hasForwardedHeaders ? configuration.trustedProxies.originalClient(chain: forwarded.forwardedFor) : nil
        let request = ProxyRequest(
            head: head, forwarded: forwarded, requestID: requestID, clientIP: clientIP, scheme: configuration.scheme, host: host,
            httpVersion: version, startedAt: .now(), forwardedClientIP: forwardedClientIP, upgrade: upgrade)
        let exchange = Exchange(
            request: request, wantsKeepAlive: info.keepAlive || configuration.isHTTP2, requestIsChunked: info.chunked,
            maxBodyBytes: configuration.limits.maxBodyBytes)
        exchange.requestEnded = endsHere
        self.exchange = exchange
        if request.isIdempotent { exchange.replayBody = [] }

        let limits = configuration.limits
        if headBytes > limits.maxHeaderBytes {
            respondLocally(
                exchange, .error(.requestHeaderFieldsTooLarge, "request headers larger than \(limits.maxHeaderBytes) bytes", requestID: requestID))
            return
        }
        if info.mayHaveContentLength, let length = request.head.headers.first(name: "Content-Length") {
            guard let n = Int(length), n >= 0 else {
                respondLocally(exchange, .error(.badRequest, "invalid Content-Length", requestID: requestID))
                return
            }
            if n > limits.maxBodyBytes {
                respondLocally(exchange, .error(.payloadTooLarge, "request body larger than \(limits.maxBodyBytes) bytes", requestID: requestID))
                return
            }
        }
        let decision = configuration.router.decide(request, eventLoop: eventLoop)
        switch consume decision {
        case .decided(let decision):
            decided(exchange, decision)
        case .pending(let future):
            future.hop(to: eventLoop).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let decision):
                    self.decided(exchange, decision)
                case .failure(let error):
                    self.configuration.logger.error(
                        "routing failed", metadata: ["request.id": "\(exchange.request.requestID)", "error": "\(error)"])
                    self.decided(exchange, .respond(.error(.internalServerError, "internal error", requestID: exchange.request.requestID)))
                }
            }
        }
    }

    static func headerBytes(_ head: HTTPRequestHead) -> Int {
        var n = head.uri.utf8.count + 16
        for (name, value) in head.headers { n += name.utf8.count + value.utf8.count + 4 }
        return n
    }

    func requestBody(_ chunk: ByteBuffer) {
        guard let exchange else { return }
        exchange.bodyBytes += chunk.readableBytes
        if exchange.bodyBytes > exchange.maxBodyBytes {
            if exchange.phase == .respondingLocally { return }
            if exchange.responseStarted {
                abortClient()
            } else {
                // The attempt in progress ends here: tell the router (it counts requests in flight per node).
                if exchange.phase == .connecting || exchange.phase == .forwarding {
                    report(exchange, failure: .clientClosed)
                }
                abandonUpstream(exchange)
                respondLocally(exchange, Self.tooLarge(exchange))
            }
            return
        }
        if exchange.phase == .respondingLocally { return }  // discarded
        if exchange.replayBody != nil {
            if exchange.bodyBytes <= configuration.limits.maxReplayBodyBytes {
                exchange.replayBody!.append(chunk)
            } else {
                exchange.replayBody = nil
            }
        }
        if exchange.phase == .forwarding, let upstream = exchange.upstream {
            upstream.write(.body(.byteBuffer(chunk)))
        } else {
            exchange.pendingBody.append(chunk)
        }
    }

    func requestEnd() {
        guard let exchange, !exchange.requestEnded else { return }
        exchange.requestEnded = true
        if exchange.phase == .forwarding, let upstream = exchange.upstream {
            upstream.writeAndFlush(.end(nil))
            requestFullySent(exchange)
        }
    }

    /// The client stopped sending its request body for `timeout`: 408 if no response has started (the
    /// attempt in progress ends, the connection closes after the answer), else the connection is cut.
    func requestBodyTimedOut(after timeout: TimeAmount) {
        guard let exchange, !exchange.requestEnded else { return }
        if exchange.responseStarted {
            abortClient()
            return
        }
        if exchange.phase == .connecting || exchange.phase == .forwarding {
            report(exchange, failure: .clientClosed)
        }
        abandonUpstream(exchange)
        respondLocally(exchange, .error(.requestTimeout, "request body stalled: no bytes for \(timeout)", requestID: exchange.request.requestID))
    }

    /// The end of one burst of request bytes: send what was relayed upstream.
    func clientReadComplete() {
        if let exchange, exchange.phase == .forwarding || exchange.phase == .tunneling { exchange.upstream?.flush() }
    }

    /// Bytes from the client's side of a tunnel (see ``ProxyClient/startTunnel()``).
    func clientTunnelBytes(_ bytes: ByteBuffer) {
        guard let exchange, exchange.phase == .tunneling, let upstream = exchange.upstream else { return }
        exchange.tunnelBytesIn += bytes.readableBytes
        upstream.writeTunnelBytes(bytes)
    }

    /// The client went away (connection closed, stream reset): the exchange in progress ends.
    func clientClosed() {
        client = nil
        guard let exchange else { return }
        self.exchange = nil
        exchange.responseDeadline = nil
        if exchange.phase == .forwarding || exchange.phase == .connecting {
            report(exchange, failure: .clientClosed)
        }
        if exchange.phase == .tunneling {
            if let upstream = exchange.upstream {
                // What the client sent last (a WebSocket close frame, say) still reaches the backend.
                exchange.upstream = nil
                upstream.delegate = nil
                upstream.closeAfterWrites()
            }
            tunnelEnded(exchange, closedBy: "client")
            return
        }
        abandonUpstream(exchange)
        configuration.router.completed(
            exchange.request, status: exchange.responseStatus ?? HTTPResponseStatus(statusCode: 499),
            bytesSent: exchange.bytesSent, duration: Self.since(exchange.request.startedAt))
    }

    private func tunnelEnded(_ exchange: Exchange, closedBy side: String) {
        configuration.counters.tunnels.subtract(1, ordering: .relaxed)
        configuration.router.tunnelClosed(
            exchange.request, closedBy: side, bytesFromClient: exchange.tunnelBytesIn, bytesToClient: exchange.bytesSent,
            duration: Self.since(exchange.tunnelStartedAt ?? exchange.request.startedAt))
    }

    func clientWritabilityChanged(isWritable: Bool) {
        exchange?.upstream?.setReadingPaused(!isWritable)
    }

    // MARK: - Deciding and connecting

    private func decided(_ exchange: Exchange, _ decision: consuming ProxyDecision) {
        guard exchange === self.exchange, client != nil else { return }
        switch consume decision {
        case .respond(let response):
            respondLocally(exchange, response)
        case .forward(let plan):
            if let limit = plan.maxBodyBytes, limit < exchange.maxBodyBytes {
                exchange.maxBodyBytes = limit
                // A body declared, or already read, past the plan's limit is refused before any backend sees it.
                let declared = exchange.request.head.headers.first(name: "Content-Length").flatMap { Int($0) } ?? 0
                if declared > limit || exchange.bodyBytes > limit {
                    respondLocally(exchange, Self.tooLarge(exchange))
                    return
                }
            }
            exchange.plan = consume plan
            connect(exchange)
        }
    }

    private static func tooLarge(_ exchange: Exchange) -> HTTPResponse {
        .error(.payloadTooLarge, "request body larger than \(exchange.maxBodyBytes) bytes", requestID: exchange.request.requestID)
    }

    private func connect(_ exchange: Exchange) {
        // Fields read from the plan in place: copying the whole plan retains every reference in it.
        guard let target = exchange.plan?.target, let connectTimeout = exchange.plan?.connectTimeout else { return }
        exchange.phase = .connecting
        exchange.attempts += 1
        let pool = loopPool
        // A protocol switch needs a connection of its own: HTTP/1.1 even where requests go as HTTP/2 streams.
        let http1Only = exchange.request.upgrade != nil
        // The usual case, an idle keep-alive connection, without a callback.
        if let idle = pool.takeIdle(target, http1Only: http1Only) {
            startForwarding(exchange, on: idle, reused: true)
            return
        }
        pool.acquire(target, connectTimeout: connectTimeout, http1Only: http1Only) { [self] result in
            guard exchange === self.exchange, exchange.phase == .connecting, self.client != nil else {
                if case .success(let acquired) = result { pool.release(acquired.connection) }
                return
            }
            switch result {
            case .success(let acquired):
                self.startForwarding(exchange, on: acquired.connection, reused: acquired.reused)
            case .failure(let error):
                self.upstreamFailedBeforeResponse(exchange, failure: ProxyOutcome.Failure(acquireError: error))
            }
        }
    }

    private func startForwarding(_ exchange: Exchange, on upstream: UpstreamConnection, reused: Bool) {
        guard let head = exchange.plan?.head else { return }
        exchange.upstream = upstream
        exchange.upstreamReused = reused
        exchange.phase = .forwarding
        upstream.delegate = self
        // Upstream requests are HTTP/1.1 whatever the client spoke (the serializer writes the version);
        // hop-by-hop headers (Connection, Transfer-Encoding among them) were left out on arrival.
        var chunked = false
        if exchange.requestIsChunked || (configuration.isHTTP2 && !exchange.requestEnded) || exchange.bodyBytes > 0 {
            chunked = !head.headers.contains(name: "Content-Length")
        }
        exchange.requestSentAt = .now()
        upstream.writeHead(
            head, uri: exchange.plan?.uri, host: exchange.plan?.host, forwarded: exchange.request.forwarded, chunked: chunked,
            upgrade: exchange.request.upgrade)
        // On a retry the pending body was consumed by the first attempt: replay what was kept.
        let body = exchange.attempts > 1 ? (exchange.replayBody ?? []) : exchange.pendingBody
        exchange.pendingBody = []
        for chunk in body { upstream.write(.body(.byteBuffer(chunk))) }
        if exchange.requestEnded {
            upstream.writeAndFlush(.end(nil))
            requestFullySent(exchange)
        } else {
            upstream.flush()
        }
        client?.setRequestBodyPaused(!upstream.channel.isWritable)
    }

    private func requestFullySent(_ exchange: Exchange) {
        guard let responseTimeout = exchange.plan?.responseTimeout, !exchange.responseStarted else { return }
        let deadline = NIODeadline.now() + responseTimeout
        exchange.responseDeadline = deadline
        client?.responseDeadlineSet(deadline)
    }

    /// From the client's timer: times the exchange out if its response head is overdue. Returns the
    /// deadline still to watch, if any.
    func checkResponseDeadline(now: NIODeadline) -> NIODeadline? {
        guard let exchange, let deadline = exchange.responseDeadline, !exchange.responseStarted else { return nil }
        if now < deadline { return deadline }
        exchange.responseDeadline = nil
        exchange.timedOut = true
        exchange.upstream?.close()  // reported through upstreamClosed
        return nil
    }

    // MARK: - Upstream delegate

    func upstreamResponseHead(_ head: consuming ProxyResponseHead) {
        guard let exchange, let client, exchange.plan != nil else { return }
        if exchange.plan?.retryOnStatus.isEmpty == false, retryAfterStatus(exchange, head.status) { return }
        exchange.responseDeadline = nil
        exchange.responseStarted = true
        exchange.responseStatus = head.status
        exchange.firstByteAt = .now()
        var response = consume head  // without hop-by-hop headers (the upstream handlers leave them out)
        if !configuration.isHTTP2 && response.version != exchange.request.httpVersion { response.version = exchange.request.httpVersion }
        if let removed = exchange.plan?.removedResponseFields { response.removeFields(named: removed) }
        var extras = ResponseHeadExtras(requestID: exchange.request.requestID)
        if let fields = exchange.plan?.responseHeaders, !fields.isEmpty { extras.fields = fields }
        if response.status.code == 101 {
            // Only after an upgrade the request asked for (the upstream handler refuses any other 101);
            // its `Upgrade` field came with it.
            extras.fields.add(name: "Connection", value: "upgrade")
        } else if !exchange.wantsKeepAlive && !configuration.isHTTP2 {
            extras.close = true
            exchange.closeAfterResponse = true
        }
        client.sendResponseHead(response, extras: extras)
    }

    func upstreamResponseBody(_ chunk: ByteBuffer) {
        guard let exchange, let client else { return }
        exchange.bytesSent += chunk.readableBytes
        client.sendResponseBody(chunk)
        if !client.isWritable { exchange.upstream?.setReadingPaused(true) }
    }

    func upstreamTunnelBytes(_ bytes: ByteBuffer) {
        guard let exchange, exchange.phase == .tunneling, let client else { return }
        exchange.bytesSent += bytes.readableBytes
        client.sendTunnelBytes(bytes)
        if !client.isWritable { exchange.upstream?.setReadingPaused(true) }
    }

    func upstreamReadComplete() {
        client?.flushResponse()
    }

    func upstreamResponseEnd() {
        guard let exchange, client != nil, exchange.plan != nil, let upstream = exchange.upstream else { return }
        if exchange.responseStatus?.code == 101 {
            // The backend took the upgrade: the attempt is done (the router stops counting it as in
            // flight), and the two connections carry bytes until either closes.
            exchange.phase = .tunneling
            exchange.tunnelStartedAt = .now()
            upstream.reusable = false
            configuration.counters.tunnels.add(1, ordering: .relaxed)
            report(exchange, failure: nil)
            // The request is done (its access log line and latency are the switch's); the tunnel's end is
            // told through `tunnelClosed`.
            configuration.router.completed(
                exchange.request, status: .switchingProtocols, bytesSent: exchange.bytesSent, duration: Self.since(exchange.request.startedAt))
            client?.startTunnel()
            return
        }
        exchange.upstream = nil
        upstream.delegate = nil
        if exchange.requestEnded {
            loopPool.release(upstream)
        } else {
            // The backend answered before the request was fully sent: that connection cannot be reused,
            // and the rest of the client's body is discarded.
            upstream.close()
            exchange.closeAfterResponse = true
        }
        report(exchange, failure: nil)
        finish(exchange)
    }

    func upstreamClosed() {
        guard let exchange, let client else { return }
        if exchange.phase == .tunneling {
            exchange.upstream = nil
            self.exchange = nil
            tunnelEnded(exchange, closedBy: "backend")
            client.closeTunnel()
            return
        }
        guard exchange.phase == .forwarding else { return }
        exchange.upstream = nil
        if exchange.responseStarted {
            // Part of the response went out: the client must learn it is incomplete.
            report(exchange, failure: .upstreamClosed)
            // Reported: closing the client must not report the same attempt again (as .clientClosed).
            exchange.plan = nil
            abortClient()
            return
        }
        upstreamFailedBeforeResponse(exchange, failure: exchange.timedOut ? .responseTimeout : .upstreamClosed)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        client?.setRequestBodyPaused(!isWritable)
    }

    // MARK: - Failures and retries

    private func upstreamFailedBeforeResponse(_ exchange: Exchange, failure: ProxyOutcome.Failure) {
        guard let plan = exchange.plan else { return }
        exchange.responseDeadline = nil
        report(exchange, failure: failure)
        let canReplay = exchange.request.isIdempotent && exchange.replayBody != nil && failure != .responseTimeout
        if canReplay && exchange.attempts < 3 {
            // A reused keep-alive connection the backend had already closed: same backend, once.
            if failure == .upstreamClosed && exchange.upstreamReused && exchange.attempts == 1 {
                connect(exchange)
                return
            }
            if let next = nextPlan(exchange, after: plan, failure: failure) {
                exchange.plan = next
                connect(exchange)
                return
            }
        }
        let response: HTTPResponse
        switch failure {
        case .responseTimeout, .connectTimeout:
            response = .error(.gatewayTimeout, "backend \(plan.target) did not answer in time", requestID: exchange.request.requestID)
        case .poolExhausted:
            response = .error(.serviceUnavailable, "backend \(plan.target) is at its connection limit", requestID: exchange.request.requestID)
        default:
            response = .error(.badGateway, "backend \(plan.target) is unavailable", requestID: exchange.request.requestID)
        }
        respondLocally(exchange, response)
    }

    /// The router's plan for another attempt after `failure`, if the plan may be retried; it keeps the
    /// first plan's observer when the router sets none.
    private func nextPlan(_ exchange: Exchange, after plan: ForwardPlan, failure: ProxyOutcome.Failure) -> ForwardPlan? {
        guard plan.retryable, var next = configuration.router.retry(after: plan, failure: failure, request: exchange.request) else { return nil }
        if next.onComplete == nil && next.observer == nil {
            next.onComplete = plan.onComplete
            next.observer = plan.observer
            next.observerTag = plan.observerTag
        }
        return next
    }

    /// A backend answer the plan retries (``ForwardPlan/retryOnStatus``): when the request may be sent
    /// again (the plan is retryable — an idempotent request —, the request sent whole, its body kept,
    /// fewer than three attempts) and the router has another target, the answer is dropped unread with
    /// its connection, and the request goes there. Returns whether it did; if not, the answer goes to
    /// the client as it is.
    private func retryAfterStatus(_ exchange: Exchange, _ status: HTTPResponseStatus) -> Bool {
        guard let plan = exchange.plan, plan.retryable, plan.retryOnStatus.contains(Int(status.code)), exchange.requestEnded,
            exchange.replayBody != nil, exchange.attempts < 3, exchange.request.upgrade == nil,
            let next = nextPlan(exchange, after: plan, failure: .retriedStatus)
        else { return false }
        exchange.responseDeadline = nil
        exchange.responseStatus = status
        exchange.firstByteAt = .now()
        report(exchange, failure: .retriedStatus)
        exchange.responseStatus = nil
        exchange.firstByteAt = nil
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            upstream.delegate = nil
            upstream.close()  // the rest of the answer is not read
        }
        exchange.plan = next
        connect(exchange)
        return true
    }

    /// Tells the plan's observer or `onComplete` how the attempt in progress ended (nothing without a plan).
    private func report(_ exchange: Exchange, failure: ProxyOutcome.Failure?) {
        let observer = exchange.plan?.observer
        let onComplete = exchange.plan?.onComplete
        guard observer != nil || onComplete != nil || configuration.recordsUpstream, let target = exchange.plan?.target else { return }
        let ttfb: TimeAmount? = {
            guard let sent = exchange.requestSentAt, let first = exchange.firstByteAt else { return nil }
            return first - sent
        }()
        if configuration.recordsUpstream { exchange.request.annotations.setUpstream(target.id, timeToFirstByte: ttfb) }
        let outcome = ProxyOutcome(
            target: target, status: exchange.responseStatus, failure: failure, timeToFirstByte: ttfb,
            total: Self.since(exchange.requestSentAt ?? exchange.request.startedAt), responseStarted: exchange.responseStarted)
        observer?.forwardEnded(outcome, tag: exchange.plan?.observerTag ?? 0)
        onComplete?(outcome)
    }

    private func abandonUpstream(_ exchange: Exchange) {
        exchange.responseDeadline = nil
        if let upstream = exchange.upstream {
            upstream.delegate = nil
            upstream.close()
            exchange.upstream = nil
        }
    }

    private func abortClient() {
        if let exchange { abandonUpstream(exchange) }
        client?.abortResponse()
    }

    // MARK: - Local answers and completion

    private func respondLocally(_ exchange: Exchange, _ response: HTTPResponse) {
        guard let client else { return }
        exchange.phase = .respondingLocally
        exchange.pendingBody = []
        exchange.responseStarted = true
        exchange.responseStatus = response.status
        // The response's own headers are not copied: the front writes the added fields after them.
        let head = ProxyResponseHead(version: exchange.request.httpVersion, status: response.status, headers: response.headers)
        var extras = ResponseHeadExtras(
            requestID: exchange.request.requestID, contentLength: response.body.readableBytes, fields: response.addedHeaders)
        if (!exchange.requestEnded || !exchange.wantsKeepAlive) && !configuration.isHTTP2 {
            // Unread body bytes would be taken for the next request: close after answering.
            extras.close = true
            exchange.closeAfterResponse = true
        }
        client.sendResponseHead(head, extras: extras)
        if exchange.request.head.method != .HEAD && response.body.readableBytes > 0 {
            client.sendResponseBody(response.body)
        }
        exchange.bytesSent += response.body.readableBytes
        finish(exchange)
    }

    private func finish(_ exchange: Exchange) {
        exchange.responseDeadline = nil
        self.exchange = nil
        configuration.router.completed(
            exchange.request, status: exchange.responseStatus ?? .ok, bytesSent: exchange.bytesSent,
            duration: Self.since(exchange.request.startedAt))
        guard let client else { return }
        client.setRequestBodyPaused(false)
        client.sendResponseEnd(close: exchange.closeAfterResponse)
    }

    static func since(_ start: NIODeadline) -> TimeAmount {
        NIODeadline.now() - start
    }
}

@available(*, unavailable)
extension ProxyStream: Sendable {}

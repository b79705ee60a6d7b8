import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// What the proxy handler tells the connection guard in front of the HTTP/1 decoder.
enum FrontConnectionEvent: Sendable {
    /// A request head was decoded: stop the header-read timer.
    case requestHeadReceived
    /// The response to the current request is complete: the connection is idle again.
    case responseCompleted
}

/// Serves one HTTP/1.1 connection or one HTTP/2 stream: asks the router what to do with each request,
/// answers locally or forwards to a backend over a pooled keep-alive connection, streaming bodies both
/// ways with backpressure, and retries a failed idempotent request on another backend when no
/// response byte has gone back yet.
///
/// Requests on one HTTP/1 connection are handled one at a time; `HTTPServerPipelineHandler` in front
/// holds pipelined requests back until the previous response is complete, so answers go out in order.
final class ProxyServerHandler: ChannelDuplexHandler, UpstreamExchangeDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    struct Configuration: Sendable {
        var router: any ProxyRouter
        var pools: UpstreamPools
        var limits: ProxyLimits
        var scheme: String
        var isHTTP2: Bool
        var counters: FrontCounters
        var logger: Logger
    }

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
    }

    /// The state of the request in progress.
    private final class Exchange {
        let request: ProxyRequest
        var phase: Phase = .deciding
        var pendingBody: [ByteBuffer] = []
        /// The body so far, kept while the request may be replayed on another backend; nil once too big.
        var replayBody: [ByteBuffer]?
        var bodyBytes = 0
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

        init(request: ProxyRequest, wantsKeepAlive: Bool, requestIsChunked: Bool) {
            self.request = request
            self.wantsKeepAlive = wantsKeepAlive
            self.requestIsChunked = requestIsChunked
        }
    }

    private let configuration: Configuration
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var readPaused = false
    private var pendingRead = false
    private var clientIP = ""
    private var connectionGuard: FrontConnectionGuard?
    /// The upstream pool of this connection's event loop, looked up once.
    private var cachedLoopPool: UpstreamLoopPool?
    /// After answering before the request body was read (413, early errors): the rest of the body is
    /// read and dropped until the client closes, so closing does not reset the connection (a reset can
    /// destroy the answer before the client reads it). Bounded by ``lingerTimeout``.
    private var discardingInput = false
    static let lingerTimeout: TimeAmount = .seconds(2)
    /// The response-timeout timer and when it fires. One timer per connection serves every exchange: it
    /// may fire early (then it is set again for the exchange's deadline) or find no deadline (then it
    /// stops), so a keep-alive request costs no timer scheduling or cancelling in the common case.
    private var responseTimer: Scheduled<Void>?
    private var responseTimerAt: NIODeadline?

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientIP = Self.clientIP(of: context.channel)
        if configuration.isHTTP2 { configuration.counters.streams.add(1, ordering: .relaxed) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        connectionGuard = nil
        if configuration.isHTTP2 { configuration.counters.streams.subtract(1, ordering: .relaxed) }
        responseTimer?.cancel()
        responseTimer = nil
    }

    private func loopPool(_ context: ChannelHandlerContext) -> UpstreamLoopPool {
        if let cachedLoopPool { return cachedLoopPool }
        let pool = configuration.pools.pool(for: context.eventLoop)
        cachedLoopPool = pool
        return pool
    }

    static func clientIP(of channel: any Channel) -> String {
        // For an HTTP/2 stream the address is the parent connection's.
        let address = channel.remoteAddress ?? channel.parent?.remoteAddress
        return address?.ipAddress ?? "unknown"
    }

    // MARK: - Inbound from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if discardingInput { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            received(head, context: context)
        case .body(let chunk):
            receivedBody(chunk, context: context)
        case .end:
            receivedEnd(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let exchange, exchange.phase == .forwarding { exchange.upstream?.flush() }
        context.fireChannelReadComplete()
    }

    private func received(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if !configuration.isHTTP2 {
            // The guard in front of the decoder, told directly where requests begin and end. Found on the
            // first request: handlers added together after another are added last one first.
            if connectionGuard == nil { connectionGuard = try? context.pipeline.syncOperations.handler(type: FrontConnectionGuard.self) }
            assert(connectionGuard != nil, "an HTTP/1 front pipeline without its FrontConnectionGuard")
            connectionGuard?.note(.requestHeadReceived)
        }
        let requestID = RequestID.accept(head.headers.first(name: RequestID.headerName))
        let host = head.headers.first(name: "Host") ?? ""
        let requestIsChunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        var forwarded = head
        HopByHop.strip(&forwarded.headers)
        HopByHop.addForwarded(&forwarded.headers, clientIP: clientIP, scheme: configuration.scheme, host: host, requestID: requestID)
        let request = ProxyRequest(
            head: forwarded, requestID: requestID, clientIP: clientIP, scheme: configuration.scheme, host: host,
            httpVersion: head.version, startedAt: .now())
        let exchange = Exchange(request: request, wantsKeepAlive: head.isKeepAlive || configuration.isHTTP2, requestIsChunked: requestIsChunked)
        self.exchange = exchange
        if request.isIdempotent { exchange.replayBody = [] }

        let limits = configuration.limits
        if Self.headerBytes(head) > limits.maxHeaderBytes {
            respondLocally(exchange, .error(.requestHeaderFieldsTooLarge, "request headers larger than \(limits.maxHeaderBytes) bytes", requestID: requestID), context: context)
            return
        }
        if let length = head.headers.first(name: "Content-Length") {
            guard let n = Int(length), n >= 0 else {
                respondLocally(exchange, .error(.badRequest, "invalid Content-Length", requestID: requestID), context: context)
                return
            }
            if n > limits.maxBodyBytes {
                respondLocally(exchange, .error(.payloadTooLarge, "request body larger than \(limits.maxBodyBytes) bytes", requestID: requestID), context: context)
                return
            }
        }
        switch configuration.router.decide(request, eventLoop: context.eventLoop) {
        case .decided(let decision):
            decided(exchange, .success(decision))
        case .pending(let future):
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                self.decided(exchange, result)
            }
        }
    }

    static func headerBytes(_ head: HTTPRequestHead) -> Int {
        var n = head.uri.utf8.count + 16
        for (name, value) in head.headers { n += name.utf8.count + value.utf8.count + 4 }
        return n
    }

    private func receivedBody(_ chunk: ByteBuffer, context: ChannelHandlerContext) {
        guard let exchange else { return }
        exchange.bodyBytes += chunk.readableBytes
        if exchange.bodyBytes > configuration.limits.maxBodyBytes {
            if exchange.phase == .respondingLocally { return }
            if exchange.responseStarted {
                abortClient(context: context)
            } else {
                // The attempt in progress ends here: tell the router (it counts requests in flight per node).
                if let plan = exchange.plan, exchange.phase == .connecting || exchange.phase == .forwarding {
                    report(exchange, plan: plan, failure: .clientClosed)
                }
                abandonUpstream(exchange)
                respondLocally(exchange, .error(.payloadTooLarge, "request body larger than \(configuration.limits.maxBodyBytes) bytes", requestID: exchange.request.requestID), context: context)
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

    private func receivedEnd(context: ChannelHandlerContext) {
        guard let exchange else { return }
        exchange.requestEnded = true
        if exchange.phase == .forwarding, let upstream = exchange.upstream {
            upstream.writeAndFlush(.end(nil))
            requestFullySent(exchange, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            self.exchange = nil
            exchange.responseDeadline = nil
            responseTimer?.cancel()
            responseTimer = nil
            responseTimerAt = nil
            if exchange.phase == .forwarding || exchange.phase == .connecting {
                exchange.plan?.tap?.responseAborted()
                if let plan = exchange.plan {
                    report(exchange, plan: plan, failure: .clientClosed)
                }
            }
            abandonUpstream(exchange)
            configuration.router.completed(
                exchange.request, status: exchange.responseStatus ?? HTTPResponseStatus(statusCode: 499),
                bytesSent: exchange.bytesSent, duration: Self.since(exchange.request.startedAt))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
    }

    // MARK: - Deciding and connecting

    private func decided(_ exchange: Exchange, _ result: Result<ProxyDecision, any Error>) {
        guard exchange === self.exchange, let context else { return }
        switch result {
        case .success(.respond(let response)):
            respondLocally(exchange, response, context: context)
        case .success(.forward(let plan)):
            exchange.plan = plan
            connect(exchange, context: context)
        case .failure(let error):
            configuration.logger.error("routing failed", metadata: ["request.id": "\(exchange.request.requestID)", "error": "\(error)"])
            respondLocally(exchange, .error(.internalServerError, "internal error", requestID: exchange.request.requestID), context: context)
        }
    }

    private func connect(_ exchange: Exchange, context: ChannelHandlerContext) {
        guard let plan = exchange.plan else { return }
        exchange.phase = .connecting
        exchange.attempts += 1
        let pool = loopPool(context)
        pool.acquire(plan.target, connectTimeout: plan.connectTimeout) { [self] result in
            guard exchange === self.exchange, exchange.phase == .connecting, let context = self.context else {
                if case .success(let acquired) = result { pool.release(acquired.connection) }
                return
            }
            switch result {
            case .success(let acquired):
                self.startForwarding(exchange, on: acquired.connection, reused: acquired.reused, context: context)
            case .failure(let error):
                self.upstreamFailedBeforeResponse(exchange, failure: ProxyOutcome.Failure(acquireError: error), context: context)
            }
        }
    }

    private func startForwarding(_ exchange: Exchange, on upstream: UpstreamConnection, reused: Bool, context: ChannelHandlerContext) {
        guard var head = exchange.plan?.head else { return }
        exchange.upstream = upstream
        exchange.upstreamReused = reused
        exchange.phase = .forwarding
        upstream.delegate = self
        head.version = .http1_1  // hop-by-hop headers (Connection among them) were stripped on arrival
        if !head.headers.contains(name: "Content-Length") {
            let mayHaveBody = exchange.requestIsChunked || (configuration.isHTTP2 && !exchange.requestEnded) || exchange.bodyBytes > 0
            if mayHaveBody { head.headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked") }
        }
        exchange.requestSentAt = .now()
        upstream.write(.head(head))
        // On a retry the pending body was consumed by the first attempt: replay what was kept.
        let body = exchange.attempts > 1 ? (exchange.replayBody ?? []) : exchange.pendingBody
        exchange.pendingBody = []
        for chunk in body { upstream.write(.body(.byteBuffer(chunk))) }
        if exchange.requestEnded {
            upstream.writeAndFlush(.end(nil))
            requestFullySent(exchange, context: context)
        } else {
            upstream.flush()
        }
        readPaused = !upstream.channel.isWritable
    }

    private func requestFullySent(_ exchange: Exchange, context: ChannelHandlerContext) {
        guard let plan = exchange.plan, !exchange.responseStarted else { return }
        let deadline = NIODeadline.now() + plan.responseTimeout
        exchange.responseDeadline = deadline
        if let at = responseTimerAt, at <= deadline { return }  // fires first, then moves to the deadline
        scheduleResponseTimer(at: deadline, context: context)
    }

    private func scheduleResponseTimer(at when: NIODeadline, context: ChannelHandlerContext) {
        responseTimer?.cancel()
        responseTimerAt = when
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        responseTimer = context.eventLoop.scheduleTask(deadline: when) {
            loopBound.value.responseTimerFired()
        }
    }

    private func responseTimerFired() {
        responseTimer = nil
        responseTimerAt = nil
        guard let exchange, let deadline = exchange.responseDeadline, !exchange.responseStarted else { return }
        if NIODeadline.now() < deadline {
            if let context { scheduleResponseTimer(at: deadline, context: context) }
            return
        }
        exchange.responseDeadline = nil
        exchange.timedOut = true
        exchange.upstream?.close()  // reported through upstreamClosed
    }

    // MARK: - Upstream delegate

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        guard let exchange, let context, let plan = exchange.plan else { return }
        exchange.responseDeadline = nil
        exchange.responseStarted = true
        exchange.responseStatus = head.status
        exchange.firstByteAt = .now()
        var response = head
        response.version = exchange.request.httpVersion
        HopByHop.strip(&response.headers)  // keeps Content-Length
        for (name, value) in plan.responseHeaders { response.headers.replaceOrAdd(name: name, value: value) }
        response.headers.replaceOrAdd(name: RequestID.headerName, value: exchange.request.requestID)
        if !exchange.wantsKeepAlive && !configuration.isHTTP2 {
            response.headers.replaceOrAdd(name: "Connection", value: "close")
            exchange.closeAfterResponse = true
        }
        plan.tap?.responseHead(response)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    func upstreamResponseBody(_ chunk: ByteBuffer) {
        guard let exchange, let context else { return }
        exchange.bytesSent += chunk.readableBytes
        exchange.plan?.tap?.responseBody(chunk)
        context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
        if !context.channel.isWritable { exchange.upstream?.setReadingPaused(true) }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamResponseEnd() {
        guard let exchange, let context, let plan = exchange.plan, let upstream = exchange.upstream else { return }
        plan.tap?.responseEnd()
        exchange.upstream = nil
        upstream.delegate = nil
        if exchange.requestEnded {
            loopPool(context).release(upstream)
        } else {
            // The backend answered before the request was fully sent: that connection cannot be reused,
            // and the rest of the client's body is discarded.
            upstream.close()
            exchange.closeAfterResponse = true
        }
        report(exchange, plan: plan, failure: nil)
        finish(exchange, context: context)
    }

    func upstreamClosed() {
        guard let exchange, let context, exchange.phase == .forwarding else { return }
        exchange.upstream = nil
        if exchange.responseStarted {
            // Part of the response went out: the client must learn it is incomplete.
            exchange.plan?.tap?.responseAborted()
            if let plan = exchange.plan { report(exchange, plan: plan, failure: .upstreamClosed) }
            // Reported: closing the client must not report the same attempt again (as .clientClosed).
            exchange.plan = nil
            abortClient(context: context)
            return
        }
        upstreamFailedBeforeResponse(exchange, failure: exchange.timedOut ? .responseTimeout : .upstreamClosed, context: context)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        readPaused = !isWritable
        if isWritable, pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    // MARK: - Failures and retries

    private func upstreamFailedBeforeResponse(_ exchange: Exchange, failure: ProxyOutcome.Failure, context: ChannelHandlerContext) {
        guard let plan = exchange.plan else { return }
        exchange.responseDeadline = nil
        report(exchange, plan: plan, failure: failure)
        let canReplay = exchange.request.isIdempotent && exchange.replayBody != nil && failure != .responseTimeout
        if canReplay && exchange.attempts < 3 {
            // A reused keep-alive connection the backend had already closed: same backend, once.
            if failure == .upstreamClosed && exchange.upstreamReused && exchange.attempts == 1 {
                connect(exchange, context: context)
                return
            }
            if plan.retryable, var next = configuration.router.retry(after: plan, failure: failure, request: exchange.request) {
                if next.onComplete == nil { next.onComplete = plan.onComplete }
                exchange.plan = next
                connect(exchange, context: context)
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
        respondLocally(exchange, response, context: context)
    }

    private func report(_ exchange: Exchange, plan: ForwardPlan, failure: ProxyOutcome.Failure?) {
        guard let onComplete = plan.onComplete else { return }
        let ttfb: Duration? = {
            guard let sent = exchange.requestSentAt, let first = exchange.firstByteAt else { return nil }
            return .nanoseconds((first - sent).nanoseconds)
        }()
        onComplete(ProxyOutcome(
            target: plan.target, status: exchange.responseStatus, failure: failure, timeToFirstByte: ttfb,
            total: Self.since(exchange.requestSentAt ?? exchange.request.startedAt), responseStarted: exchange.responseStarted))
    }

    private func abandonUpstream(_ exchange: Exchange) {
        exchange.responseDeadline = nil
        if let upstream = exchange.upstream {
            upstream.delegate = nil
            upstream.close()
            exchange.upstream = nil
        }
    }

    private func abortClient(context: ChannelHandlerContext) {
        if let exchange { abandonUpstream(exchange) }
        context.close(promise: nil)
    }

    // MARK: - Local answers and completion

    private func respondLocally(_ exchange: Exchange, _ response: HTTPResponse, context: ChannelHandlerContext) {
        exchange.phase = .respondingLocally
        exchange.pendingBody = []
        exchange.responseStarted = true
        exchange.responseStatus = response.status
        var head = HTTPResponseHead(version: exchange.request.httpVersion, status: response.status, headers: response.headers)
        head.headers.replaceOrAdd(name: RequestID.headerName, value: exchange.request.requestID)
        head.headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        if (!exchange.requestEnded || !exchange.wantsKeepAlive) && !configuration.isHTTP2 {
            // Unread body bytes would be taken for the next request: close after answering.
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            exchange.closeAfterResponse = true
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if exchange.request.head.method != .HEAD && response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        exchange.bytesSent += response.body.readableBytes
        finish(exchange, context: context)
    }

    private func finish(_ exchange: Exchange, context: ChannelHandlerContext) {
        exchange.responseDeadline = nil
        self.exchange = nil
        readPaused = false
        configuration.router.completed(
            exchange.request, status: exchange.responseStatus ?? .ok, bytesSent: exchange.bytesSent,
            duration: Self.since(exchange.request.startedAt))
        if exchange.closeAfterResponse {
            // A body still arriving: half-close (the client sees the answer, then EOF) and drain it.
            let linger = !exchange.requestEnded && !configuration.isHTTP2
            if linger { discardingInput = true }
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                guard linger else {
                    context.close(promise: nil)
                    return
                }
                Self.closeLingering(context)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            connectionGuard?.note(.responseCompleted)
        }
        if pendingRead {
            pendingRead = false
            context.read()
        }
    }

    /// Closes the output side now (the client reads the answer, then EOF) and the whole connection when
    /// the client closes, or after ``lingerTimeout``. Used when unread request bytes may still arrive.
    static func closeLingering(_ context: ChannelHandlerContext) {
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        let lingering = channel.eventLoop.scheduleTask(in: lingerTimeout) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in lingering.cancel() }
    }

    // MARK: - Backpressure

    func read(context: ChannelHandlerContext) {
        if readPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.upstream?.setReadingPaused(!context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    static func since(_ start: NIODeadline) -> Duration {
        .nanoseconds((NIODeadline.now() - start).nanoseconds)
    }
}

@available(*, unavailable)
extension ProxyServerHandler: Sendable {}

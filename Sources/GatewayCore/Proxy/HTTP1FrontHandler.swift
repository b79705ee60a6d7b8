import NIOCore
import NIOHTTP1

/// One client connection speaking HTTP/1.1: the only handler of its pipeline (after TLS, if any). It
/// parses requests with ``HTTP1Parser``, hands them to the connection's ``ProxyStream`` one at a time,
/// and writes the stream's responses as bytes, so a request and its answer cross no other handler.
///
/// - **Pipelining**: the bytes of a request that arrive while the previous response is in progress stay
///   unparsed in the input buffer until that response is complete, so answers go out in request order.
///   Reading goes on meanwhile (a keep-alive client sends its next request only after the answer, and
///   stopping reads would cost two `epoll_ctl` calls per request); it stops once more than a head's worth
///   of pipelined bytes is waiting.
/// - **Limits and clocks**: an idle connection (no request, no bytes) closes after `idleTimeout`; a head
///   that has started but not finished within `headerReadTimeout` gets 408; a request body that brings
///   no byte for `bodyReadTimeout` while it is being read gets 408 (a close once the response has
///   started); a head longer than `maxHeaderBytes` gets 431; bytes that are not HTTP/1.1 get 400. Each
///   answer is JSON with a request id, then the connection closes. One timer per connection serves the
///   three clocks and is moved, not rescheduled, when a deadline moves later.
/// - **Closing with unread input** (an early answer to a request whose body is still arriving): the
///   output side closes after the answer and the rest of the input is read and dropped until the client
///   closes or ``lingerTimeout`` passes, so the close does not reset the connection before the client
///   reads the answer.
final class HTTP1FrontHandler: ChannelDuplexHandler, ProxyClient, TickFlushing {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let lingerTimeout: TimeAmount = .seconds(2)

    private enum State {
        /// Between requests: no head yet (its first bytes may have arrived).
        case awaitingHead
        /// A head went to the stream and the response is not complete.
        case inRequest
        /// The backend switched protocols (WebSocket): bytes are relayed as they are, both ways.
        case tunneling
        /// The connection is closing; input is read and dropped.
        case closing
    }

    /// How the body of the response in progress is framed on the wire.
    private enum Framing {
        /// No body bytes go out (HEAD, 204, 304).
        case none
        case contentLength
        case chunked
        /// HTTP/1.0 client, unknown length: the body ends when the connection closes.
        case untilClose
    }

    private let configuration: ProxyStreamConfiguration
    private var limits: ProxyLimits { configuration.limits }
    private var context: ChannelHandlerContext?
    private var stream: ProxyStream<HTTP1FrontHandler>?
    private var state = State.awaitingHead
    private var parser: HTTP1Parser
    /// Bytes read and not yet parsed.
    private var input: ByteBuffer
    /// Put in place of a fully parsed input, so the channel's receive buffer is free to be reused (NIO
    /// reuses it only when nothing else holds it).
    private let noInput = ByteBuffer()
    private var requestEnded = true
    private var requestIsHEAD = false
    private var framing = Framing.none
    /// The response head (and small body parts) not yet written, so they go out as one buffer.
    private var outbound: ByteBuffer?
    /// The last such buffer, written and reused for the next response once the socket has taken it.
    private var headBuffers = ReusableBuffer()
    private var responseInProgress = false
    private var closeAfterResponse = false
    private var bodyPaused = false
    private var readPending = false
    private var processScheduled = false
    var tickFlushQueued = false
    var tickFlushQueue: TickFlushQueue?
    private var drainRequested = false
    /// Which clock ``deadline`` belongs to.
    private enum Clock {
        /// No request in progress and no byte of the next one.
        case idle
        /// A head has started and is not complete.
        case header
        /// A request body is being read.
        case body
        /// A tunnel is open (no byte either way for ``ProxyLimits/tunnelIdleTimeout`` closes it).
        case tunnel
    }

    /// The clocks' timer; it may fire before ``deadline`` (then it is set again for the deadline) or find
    /// no deadline (then it does nothing).
    private var timer = LazyTimer()
    /// When the running clock runs out; nil when stopped (a request is waiting for its response).
    private var deadline: NIODeadline?
    private var clock = Clock.idle
    /// The response-timeout timer of the stream's exchanges.
    private var responseTimer = LazyTimer()

    init(configuration: ProxyStreamConfiguration) {
        self.configuration = configuration
        self.parser = HTTP1Parser(kind: .request, maxHeadBytes: configuration.limits.maxHeaderBytes)
        self.input = ByteBuffer()
    }

    // MARK: - ProxyClient

    var eventLoop: any EventLoop { context!.eventLoop }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func sendResponseHead(_ head: ProxyResponseHead, extras: ResponseHeadExtras) {
        guard let context else { return }
        var extras = extras
        let code = head.status.code
        responseInProgress = true
        if requestIsHEAD || code == 204 || code == 304 || (code >= 100 && code < 200) {
            framing = .none
        } else if extras.hasContentLength(head) {
            framing = .contentLength
        } else if head.version == .http1_1 {
            framing = .chunked
            extras.chunked = true
        } else {
            framing = .untilClose
        }
        // A 101 switches the connection to a tunnel: no `Connection: close` beside its `Connection: upgrade`.
        if (framing == .untilClose || drainRequested) && code != 101 { extras.close = true }
        if extras.close { closeAfterResponse = true }
        var buffer = headBuffers.take(context, capacity: 1024)  // the serializer grows it for a larger head
        HTTP1Serializer.writeResponseHead(head, extras: extras, into: &buffer)
        outbound = buffer
    }

    func sendResponseBody(_ chunk: ByteBuffer) {
        guard let context, chunk.readableBytes > 0 else { return }
        switch framing {
        case .none:
            return
        case .contentLength, .untilClose:
            if outbound != nil && chunk.readableBytes <= 4096 {
                var chunk = chunk
                outbound!.writeBuffer(&chunk)
            } else {
                writeOutbound(context)
                context.write(wrapOutboundOut(chunk), promise: nil)
            }
        case .chunked:
            if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 24) }
            HTTP1Serializer.writeChunkHeader(length: chunk.readableBytes, into: &outbound!)
            if chunk.readableBytes <= 4096 {
                var chunk = chunk
                outbound!.writeBuffer(&chunk)
                outbound!.writeStaticString("\r\n")
            } else {
                writeOutbound(context)
                context.write(wrapOutboundOut(chunk), promise: nil)
                outbound = context.channel.allocator.buffer(capacity: 24)
                outbound!.writeStaticString("\r\n")
            }
        }
    }

    func flushResponse() {
        guard let context else { return }
        writeOutbound(context)
        flushAtEndOfTick(on: context.eventLoop)
    }

    func flushQueuedWrites() {
        context?.flush()
    }

    func sendResponseEnd(close: Bool) {
        guard let context else { return }
        if framing == .chunked {
            if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 8) }
            outbound!.writeStaticString(HTTP1Serializer.lastChunk)
        }
        responseInProgress = false
        if close || closeAfterResponse || drainRequested {
            closeAfterAnswer(context)
            return
        }
        writeOutbound(context)
        flushAtEndOfTick(on: context.eventLoop)
        state = .awaitingHead
        arm(after: limits.idleTimeout, .idle)
        if input.readableBytes > 0 {
            // A pipelined request waits: parse it from a fresh tick, not from inside the stream's call.
            scheduleProcessing()
        } else if readPending {
            readPending = false
            context.read()
        }
    }

    func setRequestBodyPaused(_ paused: Bool) {
        guard paused != bodyPaused else { return }
        bodyPaused = paused
        if !paused && input.readableBytes > 0 { scheduleProcessing() }
        if !paused, readPending, let context, !readBlocked {
            readPending = false
            context.read()
        }
    }

    func responseDeadlineSet(_ deadline: NIODeadline) {
        guard let context else { return }
        responseTimer.arm(at: deadline, on: context.eventLoop) { [self] in self.responseTimerFired() }
    }

    private func responseTimerFired() {
        responseTimer.fired()
        if let next = stream?.checkResponseDeadline(now: .now()) { responseDeadlineSet(next) }
    }

    func abortResponse() {
        state = .closing
        context?.close(promise: nil)
    }

    func startTunnel() {
        guard let context else { return }
        state = .tunneling
        responseInProgress = false
        responseTimer.cancel()
        writeOutbound(context)  // the 101
        context.flush()
        arm(after: limits.tunnelIdleTimeout, .tunnel)
        if drainRequested {
            // The listener is shutting down: the client learns the switch, then the tunnel closes.
            closeTunnel()
            return
        }
        if input.readableBytes > 0 {
            // Bytes sent after the request and before the 101 are the new protocol's.
            let early = input
            input = noInput
            stream?.clientTunnelBytes(early)
            stream?.clientReadComplete()
        }
        if readPending && !bodyPaused {
            readPending = false
            context.read()
        }
    }

    func sendTunnelBytes(_ bytes: ByteBuffer) {
        guard let context, case .tunneling = state else { return }
        writeOutbound(context)
        context.write(wrapOutboundOut(bytes), promise: nil)
        tunnelActivity()
    }

    func closeTunnel() {
        guard let context, case .tunneling = state else { return }
        state = .closing
        deadline = nil
        let last = outbound ?? context.channel.allocator.buffer(capacity: 0)
        outbound = nil
        ChannelClosing.close(context.channel, after: context.writeAndFlush(wrapOutboundOut(last)))
    }

    /// Bytes went through the tunnel: its idle clock starts again (the timer is moved when it fires).
    private func tunnelActivity() {
        if clock == .tunnel, deadline != nil { deadline = .now() + limits.tunnelIdleTimeout }
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        input = noInput
        stream = ProxyStream(configuration: configuration, client: self, clientIP: FrontPipeline.clientIP(of: context.channel))
        if context.channel.isActive { arm(after: limits.idleTimeout, .idle) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        responseTimer.cancel()
        stream?.clientClosed()
        stream = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(after: limits.idleTimeout, .idle)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closing
        timer.cancel()
        responseTimer.cancel()
        deadline = nil
        stream?.clientClosed()
        stream = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .closing:
            return
        case .tunneling:
            tunnelActivity()
            stream?.clientTunnelBytes(unwrapInboundIn(data))
            return
        case .awaitingHead, .inRequest:
            break
        }
        if clock == .body, deadline != nil {
            // Body bytes arrived: the clock starts again (the timer is moved when it fires, not now).
            deadline = .now() + limits.bodyReadTimeout
        }
        var bytes = unwrapInboundIn(data)
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        process(context)
        if input.readableBytes == 0 { input = noInput }
        if case .awaitingHead = state, input.readableBytes > 0, clock != .header {
            // A head has started and is not complete: the header-read clock replaces the idle clock. (A
            // head that arrives whole, the usual case, never starts it.)
            arm(after: limits.headerReadTimeout, .header)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        stream?.clientReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        stream?.clientWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or a TLS failure: nothing more can be said on this connection.
        state = .closing
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case FrontServerEvent.drain = event {
            drainRequested = true
            if case .tunneling = state {
                // A tunnel has no end of its own: it closes now, so the listener's shutdown does not wait for it.
                closeTunnel()
                return
            }
            if case .awaitingHead = state, input.readableBytes == 0 {
                state = .closing
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if bodyPaused || readBlocked {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Pipelined bytes past a head's worth wait for the response in progress before more are read.
    private var readBlocked: Bool {
        if case .inRequest = state, requestEnded, input.readableBytes > limits.maxHeaderBytes { return true }
        return false
    }

    // MARK: - Parsing

    private func process(_ context: ChannelHandlerContext) {
        while true {
            switch state {
            case .closing, .tunneling:
                return
            case .inRequest:
                if requestEnded || bodyPaused { return }
            case .awaitingHead:
                break
            }
            let next: HTTP1Part?
            do {
                next = try parser.next(&input)
            } catch {
                parseFailed(error, context: context)
                return
            }
            guard let part = consume next, let stream else { return }
            switch consume part {
            case .requestHead(var head, let info):
                state = .inRequest
                requestEnded = false
                requestIsHEAD = head.method == .HEAD
                closeAfterResponse = false
                if parser.isBodyPending {
                    arm(after: limits.bodyReadTimeout, .body)
                } else {
                    deadline = nil  // no clock while a request waits for its response
                }
                let expectsContinue = parser.isBodyPending && head.version == .http1_1 && Self.takeExpectContinue(&head)
                stream.requestHead(head, info: info, endsHere: !parser.isBodyPending, upgrade: parser.upgrade)
                // Not when the request was answered at once (413 for a declared length past the limit, say).
                if expectsContinue, case .inRequest = state, !responseInProgress { sendContinue(context) }
            case .body(let chunk):
                stream.requestBody(chunk)
            case .end:
                requestEnded = true
                if clock == .body { deadline = nil }
                stream.requestEnd()
            case .responseHead:
                preconditionFailure("a request parser produced a response head")
            }
        }
    }

    /// `Expect: 100-continue`: the client waits for a go-ahead before sending its body. The front gives
    /// it (as NGINX does) and does not pass the expectation on; a backend's own 100 would not reach the
    /// client anyway (interim responses are not relayed), so without this the client would wait out its
    /// timeout (curl: 1 s) before every large upload. Removes the field and says whether it was there.
    static func takeExpectContinue(_ head: inout HTTPRequestHead) -> Bool {
        guard let expect = head.headers.first(name: "Expect"), expect.lowercased() == "100-continue" else { return false }
        head.headers.remove(name: "Expect")
        return true
    }

    private func sendContinue(_ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 25)
        buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func scheduleProcessing() {
        guard !processScheduled, let context else { return }
        processScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            self.processScheduled = false
            guard let context = self.context else { return }
            self.process(context)
            self.stream?.clientReadComplete()  // send on what was relayed from the buffer
            if case .closing = self.state { return }
            if case .awaitingHead = self.state, self.input.readableBytes > 0, self.clock != .header {
                self.arm(after: self.limits.headerReadTimeout, .header)
            }
            if self.readPending && !self.bodyPaused && !self.readBlocked {
                self.readPending = false
                context.read()
            }
        }
    }

    /// Bytes that are not HTTP/1.1: a JSON 400 (431 for a head past the limit) and a close; only the
    /// close when a response has already started.
    private func parseFailed(_ error: HTTP1ParseError, context: ChannelHandlerContext) {
        if case .inRequest = state {
            // Mid-body: the exchange in progress ends here.
            stream?.clientClosed()
            stream = nil
        }
        if responseInProgress {
            state = .closing
            context.close(promise: nil)
            return
        }
        let status: HTTPResponseStatus = error == .headTooLarge ? .requestHeaderFieldsTooLarge : .badRequest
        let message = error == .headTooLarge ? "request headers larger than \(limits.maxHeaderBytes) bytes" : "malformed HTTP request (\(error))"
        refuse(context: context, status: status, message: message)
    }

    /// Writes a minimal JSON error and closes (after the rest of the input, see ``closeLingering``).
    private func refuse(context: ChannelHandlerContext, status: HTTPResponseStatus, message: String) {
        state = .closing
        deadline = nil
        let requestID = RequestID.generate()
        let body = HTTPResponse.errorBody(message, requestID: requestID)
        var buffer = context.channel.allocator.buffer(capacity: 256 + body.utf8.count)
        buffer.writeString(
            "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nX-Request-ID: \(requestID)\r\nConnection: close\r\n\r\n\(body)"
        )
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            Self.closeLingering(context)
        }
    }

    // MARK: - Writing and closing

    private func writeOutbound(_ context: ChannelHandlerContext) {
        if let buffer = outbound {
            outbound = nil
            context.write(wrapOutboundOut(buffer), promise: nil)
            headBuffers.keep(buffer)
        }
    }

    /// After the answer: close, lingering if the request's bytes are not all read.
    private func closeAfterAnswer(_ context: ChannelHandlerContext) {
        let linger = !requestEnded && parser.isBodyPending
        state = .closing
        deadline = nil
        let last = outbound ?? context.channel.allocator.buffer(capacity: 0)
        outbound = nil
        context.writeAndFlush(wrapOutboundOut(last)).assumeIsolated().whenComplete { _ in
            if linger {
                Self.closeLingering(context)
            } else {
                context.close(promise: nil)
            }
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

    // MARK: - Clocks

    private func arm(after delay: TimeAmount, _ clock: Clock) {
        guard let context else { return }
        let deadline = NIODeadline.now() + delay
        self.deadline = deadline
        self.clock = clock
        timer.arm(at: deadline, on: context.eventLoop) { [self] in self.timerFired() }
    }

    private func timerFired() {
        timer.fired()
        guard let deadline, let context else { return }
        if NIODeadline.now() < deadline {
            timer.arm(at: deadline, on: context.eventLoop) { [self] in self.timerFired() }
            return
        }
        self.deadline = nil
        if clock == .tunnel {
            if case .tunneling = state { closeTunnel() }
            return
        }
        if clock == .body {
            guard case .inRequest = state, !requestEnded else { return }
            if bodyPaused || readBlocked {
                // The proxy stopped reading (its backend is slow to take the body): not the client's stall.
                arm(after: limits.bodyReadTimeout, .body)
                return
            }
            stream?.requestBodyTimedOut(after: limits.bodyReadTimeout)
            return
        }
        guard case .awaitingHead = state else { return }
        if clock == .header && input.readableBytes > 0 {
            refuse(context: context, status: .requestTimeout, message: "request head not received within \(limits.headerReadTimeout)")
        } else {
            state = .closing
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTP1FrontHandler: Sendable {}

import NIOCore
import NIOHTTP1

/// Sits in front of the HTTP/1 decoder of every client connection and enforces the time and size
/// limits the decoder cannot see:
///
/// - an idle keep-alive connection (no request in progress, no bytes) is closed after `idleTimeout`;
/// - a request head that has started but not finished within `headerReadTimeout` gets 408 and a close;
/// - request-head bytes past `maxHeaderBytes` without a complete head get 431 and a close.
///
/// The proxy handler of the connection tells it where requests begin and end (``note(_:)``), with a
/// direct call rather than a pipeline event: an inbound-only handler is also skipped by every write.
final class FrontConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Between requests; `headBytes` counts bytes of a head being received.
        case awaitingHead(headBytes: Int)
        case inRequest
        case closing
    }

    private let limits: ProxyLimits
    private var state: State = .awaitingHead(headBytes: 0)
    /// The pending timer and when it fires. It may fire before ``deadline`` (then it is set again for the
    /// deadline) or find no deadline at all (then it does nothing): moving a deadline does not reschedule
    /// a timer that fires no later, so a keep-alive request costs no timer work in the common case
    /// (cancelling and scheduling two timers per request was a measurable share of a proxied request).
    private var timer: Scheduled<Void>?
    private var timerAt: NIODeadline?
    /// When the running clock (idle, or header-read when `deadlineIsHeader`) runs out; nil when stopped.
    private var deadline: NIODeadline?
    private var deadlineIsHeader = false
    /// Whether a graceful shutdown asked this connection to close once idle.
    private var drainRequested = false
    private var context: ChannelHandlerContext?

    init(limits: ProxyLimits) {
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context, after: limits.idleTimeout, header: false)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm(context: context, after: limits.idleTimeout, header: false) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .awaitingHead(let before) = state else {
            if case .closing = state { return }
            context.fireChannelRead(data)
            return
        }
        let bytes = unwrapInboundIn(data).readableBytes
        if before == 0 && bytes > 0 {
            // A head has started: the header-read clock replaces the idle clock.
            arm(context: context, after: limits.headerReadTimeout, header: true)
        }
        state = .awaitingHead(headBytes: before + bytes)
        context.fireChannelRead(data)
        // The decoder ran synchronously: if no head came out and too many bytes went in, refuse.
        if case .awaitingHead(let total) = state, total > limits.maxHeaderBytes {
            refuse(context: context, status: .requestHeaderFieldsTooLarge, message: "request headers larger than \(limits.maxHeaderBytes) bytes")
        }
    }

    /// Where the connection's requests begin and end, from its proxy handler (on the channel's loop).
    func note(_ event: FrontConnectionEvent) {
        guard let context else { return }
        switch event {
        case .requestHeadReceived:
            deadline = nil
            if case .closing = state {} else { state = .inRequest }
        case .responseCompleted:
            if case .closing = state {} else {
                state = .awaitingHead(headBytes: 0)
                if drainRequested {
                    state = .closing
                    context.close(promise: nil)
                } else {
                    arm(context: context, after: limits.idleTimeout, header: false)
                }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case FrontServerEvent.drain = event {
            drainRequested = true
            if case .awaitingHead(0) = state {
                state = .closing
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(context: ChannelHandlerContext, after delay: TimeAmount, header: Bool) {
        let deadline = NIODeadline.now() + delay
        self.deadline = deadline
        deadlineIsHeader = header
        if let timerAt, timerAt <= deadline { return }  // fires first, then sets itself for the deadline
        schedule(context: context, at: deadline)
    }

    private func schedule(context: ChannelHandlerContext, at when: NIODeadline) {
        timer?.cancel()
        timerAt = when
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: when) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        timerAt = nil
        guard let deadline else { return }
        if NIODeadline.now() < deadline {
            schedule(context: context, at: deadline)
            return
        }
        self.deadline = nil
        guard case .awaitingHead(let bytes) = state else { return }
        if deadlineIsHeader && bytes > 0 {
            refuse(context: context, status: .requestTimeout, message: "request head not received within \(limits.headerReadTimeout)")
        } else {
            state = .closing
            context.close(promise: nil)
        }
    }

    /// Writes a minimal JSON error straight to the socket (below the HTTP encoder) and closes: output
    /// first, then, after what the client still sends has been read and dropped (or after
    /// ``ProxyServerHandler/lingerTimeout``), the whole connection. Closing at once with unread bytes
    /// would reset the connection and could destroy the answer before the client reads it.
    private func refuse(context: ChannelHandlerContext, status: HTTPResponseStatus, message: String) {
        state = .closing
        timer?.cancel()
        timer = nil
        timerAt = nil
        deadline = nil
        let requestID = RequestID.generate()
        let body = HTTPResponse.errorBody(message, requestID: requestID)
        var buffer = context.channel.allocator.buffer(capacity: 256 + body.utf8.count)
        buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nX-Request-ID: \(requestID)\r\nConnection: close\r\n\r\n\(body)")
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            ProxyServerHandler.closeLingering(context)
        }
    }
}

@available(*, unavailable)
extension FrontConnectionGuard: Sendable {}

/// Server-wide events sent down every open connection.
enum FrontServerEvent: Sendable {
    /// Graceful shutdown: close when idle, after the response in progress.
    case drain
}

import NIOCore
import NIOHTTP1
import NIOPosix

/// Receives the response of the exchange currently using an upstream connection.
/// All calls happen on the connection's event loop.
protocol UpstreamExchangeDelegate: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ chunk: ByteBuffer)
    func upstreamResponseEnd()
    /// The end of one read burst: flush what was relayed.
    func upstreamReadComplete()
    func upstreamClosed()
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// A keep-alive HTTP/1.1 connection to a backend, or one HTTP/2 stream to it (h2c), bound to one event
/// loop. Either way the exchange speaks HTTP/1-style request and response parts.
final class UpstreamConnection {
    let channel: any Channel
    let target: UpstreamTarget
    fileprivate let handler: UpstreamChannelHandler
    /// The exchange using the connection. Strong (a weak reference moves the exchange's handler to
    /// slow side-table reference counting on every retain): every way an exchange ends clears it (the
    /// pool's `release`, the exchange abandoning the connection, the connection closing), so the cycle
    /// with the exchange lasts as long as the exchange.
    var delegate: (any UpstreamExchangeDelegate)?
    /// Requests this connection has carried.
    var uses = 0
    /// Set when the backend said `Connection: close`, or the response was not read to its end.
    var reusable = true
    /// The loop pool it goes back to. Strong, for the same reason as ``delegate``; the pool lives as long
    /// as the server, and the connection lets go of it by closing.
    var pool: UpstreamLoopPool?
    /// The target's share of that pool, where it counts against the limit.
    let slot: UpstreamTargetPool
    /// The HTTP/2 connection carrying this stream; nil for an HTTP/1.1 connection.
    let session: UpstreamH2Session?

    /// Wraps `channel`, whose pipeline ends with `handler`, and attaches itself to the handler.
    init(channel: any Channel, target: UpstreamTarget, handler: UpstreamChannelHandler, slot: UpstreamTargetPool, session: UpstreamH2Session?) {
        self.channel = channel
        self.target = target
        self.handler = handler
        self.slot = slot
        self.session = session
        handler.connection = self
    }

    var isActive: Bool { channel.isActive }

    func write(_ part: HTTPClientRequestPart) {
        channel.write(part, promise: nil)
    }

    func writeAndFlush(_ part: HTTPClientRequestPart) {
        channel.writeAndFlush(part, promise: nil)
    }

    func flush() { channel.flush() }

    /// Stops or resumes reading responses (backpressure from a slow client).
    func setReadingPaused(_ paused: Bool) {
        handler.setReadingPaused(paused)
    }

    func close() {
        reusable = false
        channel.close(promise: nil)
    }
}

/// Relays response parts of an upstream connection to its current exchange.
final class UpstreamChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Strong until the channel goes inactive (then released, ending the cycle through the pipeline), so
    /// the pool always hears of a close even when nobody holds the connection any more.
    fileprivate var connection: UpstreamConnection?
    private var readPaused = false
    private var pendingRead = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        connection = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection, let delegate = connection.delegate else {
            // A response nobody waits for (the backend spoke out of turn): the connection is unusable.
            connection?.reusable = false
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if !head.isKeepAlive { connection.reusable = false }
            delegate.upstreamResponseHead(head)
        case .body(let chunk):
            delegate.upstreamResponseBody(chunk)
        case .end:
            delegate.upstreamResponseEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection {
            self.connection = nil
            connection.reusable = false
            connection.pool?.closed(connection)
            connection.delegate?.upstreamClosed()
            connection.delegate = nil
            connection.pool = nil
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func setReadingPaused(_ paused: Bool) {
        readPaused = paused
        if !paused, pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }
}

@available(*, unavailable)
extension UpstreamChannelHandler: Sendable {}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

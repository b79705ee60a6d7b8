import NIOCore

/// Holds back a connection's flushes until the end of its event loop's turn, then flushes once: put
/// in front of a handler that flushes per message (NIO's HTTP/2 handler flushes the connection for
/// every stream that flushes), so the streams written in one turn leave in one system call (and, over
/// TLS, are encrypted in one pass) instead of one each.
final class TickFlushCoalescingHandler: ChannelOutboundHandler, TickFlushing {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var tickFlushQueued = false
    var tickFlushQueue: TickFlushQueue?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func flush(context: ChannelHandlerContext) {
        flushAtEndOfTick(on: context.eventLoop)
    }

    func flushQueuedWrites() {
        context?.flush()
    }
}

@available(*, unavailable)
extension TickFlushCoalescingHandler: Sendable {}

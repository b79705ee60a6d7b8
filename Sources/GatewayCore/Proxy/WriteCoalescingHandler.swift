import NIOCore

/// Gathers the small buffers written between two flushes into one, so that what lies below it handles
/// one write per flush instead of one per buffer.
///
/// It sits under `NIOHTTP2Handler`, which writes every frame as a buffer of its own: two or more per
/// response (HEADERS, DATA, WINDOW_UPDATE), and several responses per event-loop tick on a busy
/// connection. Below it the socket channel queues each write separately, and TLS seals each into a
/// record of its own; gathered, a tick's frames cost one queued write and, over TLS, one record.
///
/// A buffer of ``passThroughBytes`` or more (a body's DATA frame) goes on as it is, after whatever was
/// gathered before it, so order is kept and large payloads are not copied. The promises of gathered
/// writes complete with the write that carries them. Closing writes what was gathered first (unflushed,
/// as NIO leaves unflushed writes at a close), so the channel fails those writes the way it would
/// have without this handler.
final class WriteCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Buffers at least this large are passed on instead of copied.
    static let passThroughBytes = 4096

    private var gathered: ByteBuffer?
    /// Completes every gathered write's promise; nil while none had one.
    private var gatheredPromise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let data = unwrapOutboundIn(data)
        guard case .byteBuffer(var buffer) = data, buffer.readableBytes < Self.passThroughBytes else {
            writeGathered(context: context)
            context.write(wrapOutboundOut(data), promise: promise)
            return
        }
        if gathered == nil {
            gathered = context.channel.allocator.buffer(capacity: max(1024, buffer.readableBytes))
        }
        gathered!.writeBuffer(&buffer)
        if let promise {
            if let gatheredPromise {
                gatheredPromise.futureResult.cascade(to: promise)
            } else {
                gatheredPromise = promise
            }
        }
    }

    func flush(context: ChannelHandlerContext) {
        writeGathered(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        writeGathered(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        writeGathered(context: context)
    }

    /// Passes on what was gathered, as one write (not flushed).
    private func writeGathered(context: ChannelHandlerContext) {
        guard let buffer = gathered else { return }
        let promise = gatheredPromise
        gathered = nil
        gatheredPromise = nil
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
    }
}

@available(*, unavailable)
extension WriteCoalescingHandler: Sendable {}

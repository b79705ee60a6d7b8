import NIOCore

/// A command (or a pipeline of commands) on its way to Redis, with where its replies go.
struct RedisRequest: Sendable {
    enum Sink: Sendable {
        /// One command, one reply.
        case single(EventLoopPromise<RedisValue>)
        /// A pipeline: `count` replies, delivered together in order.
        case batch(count: Int, EventLoopPromise<[RedisValue]>)
        /// No reply is awaited here (pub/sub commands, whose replies arrive as pushes).
        case none
    }

    var payload: ByteBuffer
    var name: String
    var sink: Sink
    /// How long the reply may take; nil for none.
    var timeout: TimeAmount?
}

/// Writes encoded commands and matches replies to them in order (RESP2 replies arrive in command order),
/// so many commands can be in flight on one connection.
///
/// A reply that does not come within its timeout, a protocol error, or a reply past the reader's
/// limits fails every command in flight and closes the connection: once a reply is missing or
/// unparseable, the order is lost and the connection cannot be trusted again.
///
/// In pub/sub mode every reply is handed to `onPush` instead.
final class RedisChannelHandler: ChannelDuplexHandler, TickFlushing {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var sink: RedisRequest.Sink
        var name: String
        var deadline: NIODeadline?
        var timeout: TimeAmount?
    }

    private enum State {
        case active
        case closed(RedisError)
    }

    private var state: State = .active
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var batchReplies: [RedisValue] = []
    private let reader: RESPReader
    private let address: String
    /// Set when the connection enters pub/sub mode.
    var onPush: ((RedisValue) -> Void)?
    private var timer: Scheduled<Void>?
    /// When ``timer`` fires. A timer that fires no later than a new command's deadline is kept (it re-arms
    /// itself for the oldest command when it fires), so a steady stream of commands schedules about one
    /// timer per timeout period instead of one per command.
    private var timerAt: NIODeadline?
    private var context: ChannelHandlerContext?
    /// Whether a flush is queued behind the event loop's pending tasks.
    var tickFlushQueued = false
    var tickFlushQueue: TickFlushQueue?

    init(address: String, maxReplyBytes: Int) {
        self.reader = RESPReader(maxReplyBytes: maxReplyBytes)
        self.address = address
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        timer?.cancel()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if case .closed(let error) = state {
            fail(request.sink, error)
            promise?.fail(error)
            return
        }
        switch request.sink {
        case .none:
            break
        case .single, .batch:
            let deadline = request.timeout.map { NIODeadline.now() + $0 }
            pending.append(Pending(sink: request.sink, name: request.name, deadline: deadline, timeout: request.timeout))
            if pending.count == 1, let deadline, timerAt.map({ $0 > deadline }) ?? true {
                armTimer(context: context, deadline: deadline)
            }
        }
        context.write(wrapOutboundOut(request.payload), promise: promise)
    }

    /// Flushes wait until the tasks already queued on the event loop have run, so the commands that many
    /// tasks send in one turn of the loop (one per request, on a shared connection) leave in one write,
    /// and Redis answers them with one read and one write too.
    func flush(context: ChannelHandlerContext) {
        flushAtEndOfTick(on: context.eventLoop)
    }

    func flushQueuedWrites() {
        context?.flush()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .active = state else { return }
        let bytes = unwrapInboundIn(data)
        do {
            try reader.feed(bytes)
        } catch {
            close(context: context, error: error)
            return
        }
        let (replies, error) = reader.drain()
        for reply in replies {
            deliver(reply, context: context)
            guard case .active = state else { return }
        }
        if let error { close(context: context, error: error) }
    }

    private func deliver(_ reply: RedisValue, context: ChannelHandlerContext) {
        if let onPush {
            onPush(reply)
            return
        }
        guard let head = pending.first else {
            close(context: context, error: .protocolError("reply with no command waiting for it: \(reply)"))
            return
        }
        switch head.sink {
        case .single(let promise):
            pending.removeFirst()
            promise.succeed(reply)
        case .batch(let count, let promise):
            if batchReplies.isEmpty { batchReplies.reserveCapacity(count) }
            batchReplies.append(reply)
            if batchReplies.count == count {
                pending.removeFirst()
                let replies = batchReplies
                batchReplies = []
                promise.succeed(replies)
            }
        case .none:
            pending.removeFirst()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.connectionClosed(address: address))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context, error: .connectionClosed(address: address))
    }

    // MARK: Timeouts

    private func armTimer(context: ChannelHandlerContext, deadline: NIODeadline) {
        timer?.cancel()
        timerAt = deadline
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.timerFired()
        }
    }

    /// Replies come in order, so the oldest command's deadline is the one that matters; the timer is
    /// re-armed lazily rather than on every reply.
    private func timerFired() {
        timer = nil
        timerAt = nil
        guard let context, case .active = state else { return }
        guard let head = pending.first, let deadline = head.deadline else {
            if let next = pending.first(where: { $0.deadline != nil })?.deadline {
                armTimer(context: context, deadline: next)
            }
            return
        }
        if deadline <= .now() {
            let after = Duration.nanoseconds(head.timeout?.nanoseconds ?? 0)
            close(context: context, error: .timeout(command: head.name, after: after))
        } else {
            armTimer(context: context, deadline: deadline)
        }
    }

    // MARK: Failure

    private func close(context: ChannelHandlerContext, error: RedisError) {
        // Close before failing the commands: a caller that sees its command fail must already find the
        // connection inactive, or its pool would take the connection back as idle and lease it out again.
        let failed = takePending(closingWith: error)
        context.close(promise: nil)
        for p in failed { fail(p.sink, error) }
    }

    private func failAll(_ error: RedisError) {
        for p in takePending(closingWith: error) { fail(p.sink, error) }
    }

    private func takePending(closingWith error: RedisError) -> CircularBuffer<Pending> {
        if case .active = state { state = .closed(error) }
        timer?.cancel()
        timer = nil
        timerAt = nil
        batchReplies = []
        defer { pending.removeAll() }
        return pending
    }

    private func fail(_ sink: RedisRequest.Sink, _ error: RedisError) {
        switch sink {
        case .single(let promise): promise.fail(error)
        case .batch(_, let promise): promise.fail(error)
        case .none: break
        }
    }
}

@available(*, unavailable)
extension RedisChannelHandler: Sendable {}

import NIOCore
import NIOPosix

/// A channel handler that flushes once per turn of its event loop: every write of the turn (one per
/// response, request or Redis command) is queued as it is made, and the flush runs after the loop has
/// handled every socket that was ready, before it waits again. The peer gets one write for them all and
/// is woken once, not once per message (docs/architecture.md, "Flushing").
protocol TickFlushing: AnyObject {
    /// Set while a flush is queued for the end of this turn; only ``flushAtEndOfTick(on:)`` and the
    /// loop's ``TickFlushQueue`` change it.
    var tickFlushQueued: Bool { get set }
    /// The queue of the handler's event loop, looked up on the first flush and kept: a channel's loop
    /// never changes, and the lookup (a thread-specific read and two checks) cost about 170 instructions
    /// per flush. Only ``flushAtEndOfTick(on:)`` sets it.
    var tickFlushQueue: TickFlushQueue? { get set }
    /// The flush itself, at the end of the turn.
    func flushQueuedWrites()
}

extension TickFlushing {
    /// Queues ``flushQueuedWrites()`` for the end of this turn of `eventLoop` (the handler's own), once.
    /// Must be called on `eventLoop`.
    func flushAtEndOfTick(on eventLoop: any EventLoop) {
        // The kept queue skips the lookup's own check; debug builds keep one. (`assert`, not NIO's
        // `assertInEventLoop`: that is a protocol requirement, called through the witness table even
        // in release builds.)
        assert(eventLoop.inEventLoop, "flushAtEndOfTick called off its event loop")
        guard !tickFlushQueued else { return }
        tickFlushQueued = true
        let queue: TickFlushQueue
        if let kept = tickFlushQueue {
            queue = kept
        } else {
            queue = TickFlushQueue.current(on: eventLoop)
            tickFlushQueue = queue  // stored once, not on every flush
        }
        queue.append(self)
    }
}

/// The flushes one event loop owes at the end of its turn, run by one task for all of them. A task per
/// handler cost two tasks per proxied request (client and upstream connection), each an enqueue under
/// the loop's lock, a closure in the task queue and its dequeue; this is one task per turn.
///
/// One queue per event-loop thread, found through a thread-specific variable: a handler reaches the
/// queue of the thread it runs on, which is its own loop's.
final class TickFlushQueue {
    private let eventLoop: any EventLoop
    private var pending: [any TickFlushing] = []
    /// The array being flushed, kept to reuse its storage.
    private var running: [any TickFlushing] = []
    private var scheduled = false

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        pending.reserveCapacity(64)
        running.reserveCapacity(64)
    }

    /// This thread's queue for `eventLoop`, made on first use; `eventLoop` must be the loop of the
    /// calling thread. (A thread runs one event loop, except in tests, where several `EmbeddedEventLoop`s
    /// share the test's thread: a queue made for another loop is replaced, and still runs its own task.)
    static func current(on eventLoop: any EventLoop) -> TickFlushQueue {
        eventLoop.preconditionInEventLoop()
        if let queue = perThread.currentValue, queue.eventLoop === eventLoop { return queue }
        let queue = TickFlushQueue(eventLoop: eventLoop)
        perThread.currentValue = queue
        return queue
    }

    func append(_ handler: any TickFlushing) {
        pending.append(handler)
        guard !scheduled else { return }
        scheduled = true
        eventLoop.assumeIsolated().execute { [self] in self.run() }
    }

    private func run() {
        scheduled = false
        // A flush may queue another (a write error closes a channel whose handlers flush): that goes to
        // `pending` and a new task, not into the array being walked.
        swap(&pending, &running)
        for handler in running {
            handler.tickFlushQueued = false
            handler.flushQueuedWrites()
        }
        running.removeAll(keepingCapacity: true)
    }

    /// Each queue is stored for, and only ever read on, the thread that made it (an event loop's own
    /// thread): no two threads reach one queue, which is what makes the variable safe to share.
    nonisolated(unsafe) private static let perThread = ThreadSpecificVariable<TickFlushQueue>()
}

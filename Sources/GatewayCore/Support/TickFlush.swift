import NIOCore

/// A channel handler that flushes once per turn of its event loop: every write of the turn (one per
/// response, request or Redis command) is queued as it is made, and the flush runs after the loop has
/// handled every socket that was ready, before it waits again. The peer gets one write for them all and
/// is woken once, not once per message (docs/architecture.md, "Flushing").
protocol TickFlushing: AnyObject {
    /// Set while a flush is queued for the end of this turn; only ``flushAtEndOfTick(on:)`` changes it.
    var tickFlushQueued: Bool { get set }
    /// The flush itself, at the end of the turn.
    func flushQueuedWrites()
}

extension TickFlushing {
    /// Queues ``flushQueuedWrites()`` for the end of this turn of `eventLoop` (the handler's own), once.
    func flushAtEndOfTick(on eventLoop: any EventLoop) {
        guard !tickFlushQueued else { return }
        tickFlushQueued = true
        eventLoop.assumeIsolated().execute { [self] in
            self.tickFlushQueued = false
            self.flushQueuedWrites()
        }
    }
}

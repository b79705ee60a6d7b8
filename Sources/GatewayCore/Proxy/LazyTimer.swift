import NIOCore

/// One timer for deadlines that mostly move later (idle clocks, response timeouts): arming it for a
/// deadline no earlier than the pending one does nothing, and when it fires its owner checks what is
/// due and arms it again for what is not. A keep-alive connection thus costs no scheduling or
/// cancelling per request, and an HTTP/2 connection one timer for all its streams.
///
/// Used on its event loop only.
struct LazyTimer {
    private var task: Scheduled<Void>?
    private var firesAt: NIODeadline?

    /// Makes sure the timer fires no later than `deadline`: `fire` runs then, on `eventLoop`, unless
    /// the timer is cancelled first. (`fire` must call ``fired()`` before anything else.)
    mutating func arm(at deadline: NIODeadline, on eventLoop: any EventLoop, _ fire: @escaping () -> Void) {
        if let firesAt, firesAt <= deadline { return }
        task?.cancel()
        firesAt = deadline
        task = eventLoop.assumeIsolated().scheduleTask(deadline: deadline, fire)
    }

    /// The timer has fired: the next ``arm(at:on:_:)`` schedules it again.
    mutating func fired() {
        task = nil
        firesAt = nil
    }

    mutating func cancel() {
        task?.cancel()
        task = nil
        firesAt = nil
    }
}

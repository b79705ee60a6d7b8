import NIOCore

/// The pool key of a target: its address (two node ids on one address share connections).
struct UpstreamAddress: Hashable {
    var host: String
    var port: Int
    var tls: Bool

    init(_ target: UpstreamTarget) {
        host = target.host
        port = target.port
        tls = target.tls
    }
}

/// A request waiting for a connection (or stream) to a target at its limit, on one event loop.
final class UpstreamWaiter {
    typealias Completion = (Result<(connection: UpstreamConnection, reused: Bool), any Error>) -> Void

    let connectTimeout: TimeAmount
    private var completion: Completion?
    var timer: Scheduled<Void>?

    init(connectTimeout: TimeAmount, completion: @escaping Completion) {
        self.connectTimeout = connectTimeout
        self.completion = completion
    }

    /// Hands over the result once; later calls do nothing.
    func complete(_ result: Result<(connection: UpstreamConnection, reused: Bool), any Error>) {
        timer?.cancel()
        timer = nil
        guard let completion else { return }
        self.completion = nil
        completion(result)
    }
}

/// One target's share of an ``UpstreamLoopPool``: idle HTTP/1.1 connections, HTTP/2 connections, the
/// count of what is held against the limit, and the requests waiting in arrival order.
final class UpstreamTargetPool {
    /// The first target seen at this address (its id names the metrics).
    let target: UpstreamTarget
    /// Idle keep-alive connections (HTTP/1.1), most recently used last: the first ones have been
    /// unused the longest.
    var idle: [UpstreamConnection] = []
    /// The fewest idle connections since the last surplus check: that many at the front of `idle`
    /// were not used in between.
    var idleLowWater = 0
    /// HTTP/2 connections, connecting or open (h2c).
    var sessions: [UpstreamH2Session] = []
    /// What counts against the limit: HTTP/1.1 connections open or connecting (idle included), or h2c
    /// streams open or being opened.
    var held = 0
    /// Requests waiting for a slot, first come first served.
    var waiters = CircularBuffer<UpstreamWaiter>()
    /// When a failed TLS connection to it was last logged.
    var failureLoggedAt: NIODeadline?

    init(target: UpstreamTarget) {
        self.target = target
    }

    /// The first waiter still waiting, removed from the queue.
    func popWaiter() -> UpstreamWaiter? {
        waiters.isEmpty ? nil : waiters.removeFirst()
    }

    /// Removes `waiter` (its deadline passed).
    func remove(_ waiter: UpstreamWaiter) -> Bool {
        guard let i = waiters.firstIndex(where: { $0 === waiter }) else { return false }
        waiters.remove(at: i)
        return true
    }
}

@available(*, unavailable)
extension UpstreamTargetPool: Sendable {}

@available(*, unavailable)
extension UpstreamWaiter: Sendable {}

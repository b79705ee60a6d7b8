import NIOCore

/// The bookkeeping of a connection pool, apart from any I/O: which connections are idle, leased or
/// being opened, who waits for one, and when the next connect may be tried after failures.
///
/// Connections and waiters are named by integer ids; the pool owns the objects and runs the actions
/// this machine returns.
struct ConnectionPoolStateMachine: Sendable {
    enum LeaseAction: Equatable {
        /// Hand this idle connection to the waiter now.
        case lease(connection: Int)
        /// The waiter is queued; nothing else to do.
        case wait
        /// The waiter is queued; open a new connection with this id.
        case waitAndConnect(connection: Int)
        /// Fail the waiter at once.
        case fail(RedisError)
    }

    enum ReleaseAction: Equatable {
        case none
        /// Give the connection to this waiter.
        case lease(connection: Int, waiter: Int)
        /// Close the connection (the pool is shutting down or has too many).
        case close(connection: Int)
        /// The connection was lost and waiters remain: open a replacement with this id.
        case connect(connection: Int)
    }

    enum ConnectFailureAction: Equatable {
        case none
        /// Nothing is left that could serve the waiters soon: fail them.
        case failWaiters([Int], RedisError)
    }

    private struct IdleConnection: Equatable {
        var id: Int
        var since: NIODeadline
    }

    private enum State: Equatable {
        case running
        case shutdown
    }

    let maxConnections: Int
    private var state: State = .running
    /// Idle connections, the most recently returned last (leases take from the end, so the ones at the
    /// front are those idle longest).
    private var idle: [IdleConnection] = []
    private var leased: Set<Int> = []
    private var connecting = 0
    private var waiters = CircularBuffer<Int>()
    private var nextConnectionID = 1
    private var consecutiveFailures = 0
    private var retryAfter: NIODeadline?
    private var lastError: RedisError?

    init(maxConnections: Int) {
        precondition(maxConnections > 0)
        self.maxConnections = maxConnections
    }

    var idleCount: Int { idle.count }
    var leasedCount: Int { leased.count }
    var connectingCount: Int { connecting }
    var waiterCount: Int { waiters.count }
    var failuresInARow: Int { consecutiveFailures }
    func isIdle(_ id: Int) -> Bool { idle.contains { $0.id == id } }
    private var total: Int { idle.count + leased.count + connecting }

    /// Takes an idle connection if there is one, without queueing.
    mutating func leaseIdle() -> Int? {
        guard state == .running, let id = idle.popLast()?.id else { return nil }
        leased.insert(id)
        return id
    }

    mutating func lease(waiter: Int, now: NIODeadline) -> LeaseAction {
        guard state == .running else { return .fail(.shutdown) }
        if let id = idle.popLast()?.id {
            leased.insert(id)
            return .lease(connection: id)
        }
        if total < maxConnections {
            if let retryAfter, now < retryAfter {
                // Backing off: queue only if something live may free up soon.
                if leased.isEmpty && connecting == 0 {
                    return .fail(lastError ?? .connectionClosed(address: "redis"))
                }
                waiters.append(waiter)
                return .wait
            }
            waiters.append(waiter)
            connecting += 1
            return .waitAndConnect(connection: makeConnectionID())
        }
        waiters.append(waiter)
        return .wait
    }

    mutating func connected(_ id: Int, now: NIODeadline) -> ReleaseAction {
        connecting -= 1
        consecutiveFailures = 0
        retryAfter = nil
        lastError = nil
        guard state == .running else { return .close(connection: id) }
        if let waiter = waiters.popFirst() {
            leased.insert(id)
            return .lease(connection: id, waiter: waiter)
        }
        idle.append(IdleConnection(id: id, since: now))
        return .none
    }

    mutating func connectFailed(_ error: RedisError, now: NIODeadline, backoff: Duration) -> ConnectFailureAction {
        connecting -= 1
        consecutiveFailures += 1
        lastError = error
        retryAfter = now + backoff.timeAmount
        guard leased.isEmpty, idle.isEmpty, connecting == 0, !waiters.isEmpty else { return .none }
        let failed = Array(waiters)
        waiters.removeAll()
        return .failWaiters(failed, error)
    }

    /// A leased connection comes back. `isActive` is false when it closed while leased.
    mutating func release(_ id: Int, isActive: Bool, now: NIODeadline) -> ReleaseAction {
        guard leased.remove(id) != nil else { return .none }
        guard isActive else { return replaceLost(now: now) }
        guard state == .running else { return .close(connection: id) }
        if let waiter = waiters.popFirst() {
            leased.insert(id)
            return .lease(connection: id, waiter: waiter)
        }
        idle.append(IdleConnection(id: id, since: now))
        return .none
    }

    /// Connections idle since before `now - timeout`, longest idle first, leaving at least `keep` idle:
    /// they are taken out of the pool for the caller to close.
    mutating func expireIdle(now: NIODeadline, timeout: TimeAmount, keep: Int) -> [Int] {
        var expired: [Int] = []
        while idle.count > keep, let oldest = idle.first, oldest.since + timeout <= now {
            idle.removeFirst()
            expired.append(oldest.id)
        }
        return expired
    }

    /// An idle connection closed (the server went away, or an idle timeout on its side).
    mutating func closed(_ id: Int, now: NIODeadline) -> ReleaseAction {
        guard let index = idle.firstIndex(where: { $0.id == id }) else { return .none }
        idle.remove(at: index)
        return replaceLost(now: now)
    }

    private mutating func replaceLost(now: NIODeadline) -> ReleaseAction {
        guard state == .running, !waiters.isEmpty, total < maxConnections else { return .none }
        if let retryAfter, now < retryAfter { return .none }
        connecting += 1
        return .connect(connection: makeConnectionID())
    }

    /// The waiter gave up (deadline or cancellation). Returns whether it was still queued.
    mutating func removeWaiter(_ waiter: Int) -> Bool {
        guard let index = waiters.firstIndex(of: waiter) else { return false }
        waiters.remove(at: index)
        return true
    }

    /// Stops the pool: returns the idle connections to close and the waiters to fail.
    mutating func shutdown() -> (close: [Int], fail: [Int]) {
        state = .shutdown
        let toClose = idle.map(\.id)
        idle = []
        let toFail = Array(waiters)
        waiters.removeAll()
        return (toClose, toFail)
    }

    private mutating func makeConnectionID() -> Int {
        defer { nextConnectionID += 1 }
        return nextConnectionID
    }
}

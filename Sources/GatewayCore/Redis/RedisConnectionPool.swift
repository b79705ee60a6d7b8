import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A bounded pool of Redis connections with a wait queue, and one shared connection per event loop.
///
/// A caller leases a connection for its commands and gives it back; when all are busy it waits in line
/// until one is free or its lease deadline passes. Failed connects back off exponentially with jitter;
/// while backing off with nothing live, leases fail at once with the last connect error rather than pile
/// up, so callers can answer fast (for example 503) while Redis is down.
///
/// Plain commands (a reply per command, no connection state) need no lease: ``withSharedConnection(_:)``
/// gives a task running on an event loop that loop's shared connection, on which any number of callers
/// have commands in flight at once. Their writes are flushed together once per turn of the loop (see
/// ``RedisChannelHandler``), so the commands of many concurrent requests cost one write and one read,
/// here and in Redis, instead of one each. Blocking commands, pub/sub and anything that keeps state on
/// the connection must lease.
public final class RedisConnectionPool: Sendable {
    private struct Storage {
        var machine: ConnectionPoolStateMachine
        var connections: [Int: RedisConnection] = [:]
        var waiters: [Int: Waiter] = [:]
        var nextWaiterID = 1
    }

    private struct Waiter {
        var continuation: CheckedContinuation<RedisConnection, any Error>
        var timeout: Scheduled<Void>?
    }

    /// The shared connection of one event loop.
    private struct Lane {
        var connection: RedisConnection?
        var connecting = false
        var failures = 0
        var nextAttempt = NIODeadline.uptimeNanoseconds(0)
    }

    private struct Lanes {
        var byLoop: [ObjectIdentifier: Lane] = [:]
        var closed = false
    }

    public let configuration: RedisConfiguration
    private let storage: NIOLockedValueBox<Storage>
    private let lanes = NIOLockedValueBox(Lanes())
    private let eventLoopGroup: any EventLoopGroup
    private let backoff: Backoff
    private let logger: Logger
    /// Closes connections idle longer than ``RedisConfiguration/idleTimeout``.
    private let idleSweep = NIOLockedValueBox<RepeatedTask?>(nil)

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.backoff = Backoff(initial: configuration.initialBackoff, maximum: configuration.maxBackoff)
        self.storage = NIOLockedValueBox(Storage(machine: ConnectionPoolStateMachine(maxConnections: configuration.poolSize)))
        // Checked twice per timeout (at most every 5 s): a connection lives at most 1.5 timeouts idle.
        let every = TimeAmount.nanoseconds(max(10_000_000, min(configuration.idleTimeout.nanoseconds / 2, 5_000_000_000)))
        let sweep = eventLoopGroup.any().scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] task in
            guard let self else { return task.cancel() }
            self.closeIdleConnections()
        }
        idleSweep.withLockedValue { $0 = sweep }
    }

    /// Closes pooled connections idle longer than the idle timeout, keeping one.
    private func closeIdleConnections() {
        let timeout = configuration.idleTimeout.timeAmount
        let expired: [RedisConnection] = storage.withLockedValue { storage in
            storage.machine.expireIdle(now: .now(), timeout: timeout, keep: 1).compactMap { storage.connections.removeValue(forKey: $0) }
        }
        for connection in expired { connection.channel.close(promise: nil) }
    }

    /// Runs `body` with a leased connection and gives the connection back afterwards.
    public func withConnection<T: Sendable>(
        _ body: (RedisConnection) async throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// ``withSharedConnection(_:)`` when `shared`, else ``withConnection(_:)``: the choice a command's
    /// ``RedisCommand/needsOwnConnection`` makes.
    public func withConnection<T: Sendable>(
        shared: Bool, _ body: (RedisConnection) async throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        shared ? try await withSharedConnection(body) : try await withConnection(body)
    }

    /// Runs `body` with the calling event loop's shared connection, which other callers use at the same
    /// time: for plain commands only (no blocking commands, no `SUBSCRIBE`, no `WATCH`/`MULTI` spread
    /// over several writes). Off an event loop, or while that loop's shared connection is not up (it is
    /// opened on first use and reopened with backoff after a failure), `body` runs on a leased connection
    /// instead, so Redis being down or restarting is reported exactly as ``withConnection(_:)`` reports it.
    public func withSharedConnection<T: Sendable>(
        _ body: (RedisConnection) async throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        if let shared = sharedConnection() { return try await body(shared) }
        return try await withConnection(body)
    }

    private func sharedConnection() -> RedisConnection? {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else { return nil }
        let key = ObjectIdentifier(loop)
        let (connection, open): (RedisConnection?, Bool) = lanes.withLockedValue { lanes in
            if let connection = lanes.byLoop[key]?.connection, connection.isActive { return (connection, false) }
            guard !lanes.closed else { return (nil, false) }
            var lane = lanes.byLoop[key] ?? Lane()
            lane.connection = nil
            let open = !lane.connecting && NIODeadline.now() >= lane.nextAttempt
            if open { lane.connecting = true }
            lanes.byLoop[key] = lane
            return (nil, open)
        }
        if open { openShared(on: loop, key: key) }
        return connection
    }

    private func openShared(on loop: any EventLoop, key: ObjectIdentifier) {
        Task {
            let result: Result<RedisConnection, RedisError>
            do throws(RedisError) {
                result = .success(try await RedisConnection.connect(configuration: configuration, eventLoop: loop, id: -1))
            } catch {
                result = .failure(error)
            }
            let keep: Bool = lanes.withLockedValue { lanes in
                var lane = lanes.byLoop[key] ?? Lane()
                lane.connecting = false
                defer { lanes.byLoop[key] = lane }
                switch result {
                case .success(let connection):
                    guard !lanes.closed else { return false }
                    lane.connection = connection
                    lane.failures = 0
                    return true
                case .failure:
                    lane.failures += 1
                    lane.nextAttempt = .now() + backoff.delay(afterFailures: lane.failures).timeAmount
                    return false
                }
            }
            switch result {
            case .success(let connection) where !keep:
                await connection.close()
            case .success(let connection):
                connection.closeFuture.whenComplete { [self] _ in
                    // Forget it (the next command opens a new one); a later connection is left alone.
                    lanes.withLockedValue { lanes in
                        if lanes.byLoop[key]?.connection === connection { lanes.byLoop[key]?.connection = nil }
                    }
                }
            case .failure(let error):
                logger.debug("redis shared connection failed", metadata: ["redis.url": "\(configuration.url)", "error": "\(error)"])
            }
        }
    }

    /// Takes a connection out of the pool; give it back with ``release(_:)``.
    public func lease() async throws(RedisError) -> RedisConnection {
        // Fast path: an idle connection, no suspension.
        let idle: RedisConnection? = storage.withLockedValue { storage in
            storage.machine.leaseIdle().map { storage.connections[$0]! }
        }
        if let idle { return idle }
        do {
            return try await leaseSlowPath()
        } catch let error as RedisError {
            throw error
        } catch {
            throw .poolTimeout(after: .zero)
        }
    }

    private func leaseSlowPath() async throws -> RedisConnection {
        let waiterID = storage.withLockedValue { storage in
            defer { storage.nextWaiterID += 1 }
            return storage.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RedisConnection, any Error>) in
                let action: ConnectionPoolStateMachine.LeaseAction = storage.withLockedValue { storage in
                    let action = storage.machine.lease(waiter: waiterID, now: .now())
                    switch action {
                    case .wait, .waitAndConnect:
                        let timeout = eventLoopGroup.any().scheduleTask(in: configuration.leaseTimeout.timeAmount) {
                            [self] in
                            self.waiterGaveUp(waiterID, error: .poolTimeout(after: self.configuration.leaseTimeout))
                        }
                        storage.waiters[waiterID] = Waiter(continuation: continuation, timeout: timeout)
                    case .lease, .fail:
                        break
                    }
                    return action
                }
                switch action {
                case .lease(let id):
                    continuation.resume(returning: storage.withLockedValue { $0.connections[id]! })
                case .fail(let error):
                    continuation.resume(throwing: error)
                case .wait:
                    break
                case .waitAndConnect(let id):
                    openConnection(id)
                }
            }
        } onCancel: {
            waiterGaveUp(waiterID, error: nil)
        }
    }

    /// Gives a leased connection back.
    public func release(_ connection: RedisConnection) {
        let (action, waiter): (ConnectionPoolStateMachine.ReleaseAction, Waiter?) = storage.withLockedValue { storage in
            let action = storage.machine.release(connection.id, isActive: connection.isActive, now: .now())
            if !connection.isActive { storage.connections[connection.id] = nil }
            return (action, Self.takeWaiter(for: action, from: &storage))
        }
        run(action, waiter: waiter)
    }

    private static func takeWaiter(for action: ConnectionPoolStateMachine.ReleaseAction, from storage: inout Storage) -> Waiter? {
        guard case .lease(_, let waiterID) = action else { return nil }
        return storage.waiters.removeValue(forKey: waiterID)
    }

    private func run(_ action: ConnectionPoolStateMachine.ReleaseAction, waiter: Waiter?) {
        switch action {
        case .none:
            break
        case .lease(let id, _):
            waiter?.timeout?.cancel()
            let connection = storage.withLockedValue { $0.connections[id] }
            if let connection, let waiter {
                waiter.continuation.resume(returning: connection)
            } else if let connection {
                // The waiter already gave up between the two locks: put the connection back.
                release(connection)
            }
        case .close(let id):
            let connection = storage.withLockedValue { $0.connections.removeValue(forKey: id) }
            connection?.channel.close(promise: nil)
        case .connect(let id):
            openConnection(id)
        }
    }

    private func waiterGaveUp(_ waiterID: Int, error: RedisError?) {
        let waiter: Waiter? = storage.withLockedValue { storage in
            guard storage.machine.removeWaiter(waiterID) else { return nil }
            return storage.waiters.removeValue(forKey: waiterID)
        }
        guard let waiter else { return }
        waiter.timeout?.cancel()
        if let error {
            waiter.continuation.resume(throwing: error)
        } else {
            waiter.continuation.resume(throwing: CancellationError())
        }
    }

    private func openConnection(_ id: Int) {
        // One short task per connect attempt; it ends when the attempt does.
        Task {
            do {
                let connection = try await RedisConnection.connect(
                    configuration: configuration, eventLoop: eventLoopGroup.any(), id: id)
                connection.closeFuture.whenComplete { [self] _ in self.connectionClosed(id) }
                let (action, waiter): (ConnectionPoolStateMachine.ReleaseAction, Waiter?) = storage.withLockedValue { storage in
                    storage.connections[id] = connection
                    let action = storage.machine.connected(id, now: .now())
                    return (action, Self.takeWaiter(for: action, from: &storage))
                }
                run(action, waiter: waiter)
            } catch {
                let redisError = (error as? RedisError) ?? .connectionRefused(address: configuration.url.address, reason: "\(error)")
                let (action, failures) = storage.withLockedValue { storage in
                    let delay = backoff.delay(afterFailures: storage.machine.failuresInARow + 1)
                    let action = storage.machine.connectFailed(redisError, now: .now(), backoff: delay)
                    return (action, storage.machine.failuresInARow)
                }
                if failures == 1 {
                    logger.warning("redis connect failed", metadata: ["redis.url": "\(configuration.url)", "error": "\(redisError)"])
                } else {
                    logger.debug(
                        "redis connect failed",
                        metadata: ["redis.url": "\(configuration.url)", "error": "\(redisError)", "redis.failures": "\(failures)"])
                }
                if case .failWaiters(let ids, let error) = action {
                    let waiters = storage.withLockedValue { storage in ids.compactMap { storage.waiters.removeValue(forKey: $0) } }
                    for waiter in waiters {
                        waiter.timeout?.cancel()
                        waiter.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    private func connectionClosed(_ id: Int) {
        let action: ConnectionPoolStateMachine.ReleaseAction = storage.withLockedValue { storage in
            // An idle connection that closed is forgotten now; a leased one when it is given back.
            if storage.machine.isIdle(id) { storage.connections[id] = nil }
            return storage.machine.closed(id, now: .now())
        }
        run(action, waiter: nil)
    }

    /// Closes idle and shared connections and fails waiters; leased connections close when given back.
    /// Commands in flight on a shared connection fail with ``RedisError/connectionClosed(address:)``.
    public func shutdown() async {
        idleSweep.withLockedValue { $0?.cancel() }
        let shared: [RedisConnection] = lanes.withLockedValue { lanes in
            lanes.closed = true
            defer { lanes.byLoop = [:] }
            return lanes.byLoop.values.compactMap(\.connection)
        }
        // Not awaited: a shared connection lives on its caller's event loop, which may already be gone.
        for connection in shared where connection.isActive { connection.channel.close(promise: nil) }
        let (connections, waiters): ([RedisConnection], [Waiter]) = storage.withLockedValue { storage in
            let (close, fail) = storage.machine.shutdown()
            let connections = close.compactMap { storage.connections.removeValue(forKey: $0) }
            let waiters = fail.compactMap { storage.waiters.removeValue(forKey: $0) }
            return (connections, waiters)
        }
        for waiter in waiters {
            waiter.timeout?.cancel()
            waiter.continuation.resume(throwing: RedisError.shutdown)
        }
        for connection in connections { await connection.close() }
    }

    /// Connection counts, for metrics and tests.
    public var stats: (idle: Int, leased: Int, connecting: Int, waiting: Int) {
        storage.withLockedValue { ($0.machine.idleCount, $0.machine.leasedCount, $0.machine.connectingCount, $0.machine.waiterCount) }
    }

    /// Open shared connections (one at most per event loop that has sent commands).
    public var sharedCount: Int {
        lanes.withLockedValue { $0.byLoop.values.filter { $0.connection?.isActive == true }.count }
    }
}

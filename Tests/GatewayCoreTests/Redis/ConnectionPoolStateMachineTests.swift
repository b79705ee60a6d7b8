@testable import GatewayCore
import NIOCore
import Testing

/// The pool's bookkeeping without sockets: every event in, the action out.
@Suite("Connection pool state machine", .timeLimit(.minutes(1)))
struct ConnectionPoolStateMachineTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let refused = RedisError.connectionRefused(address: "127.0.0.1:1", reason: "refused")

    /// The first caller opens a connection; once it is up the caller gets it, and after it comes back the
    /// next caller takes it idle without opening another.
    @Test func firstLeaseConnectsThenIdleIsReused() {
        var machine = ConnectionPoolStateMachine(maxConnections: 2)
        #expect(machine.leaseIdle() == nil)
        #expect(machine.lease(waiter: 1, now: t0) == .waitAndConnect(connection: 1))
        #expect(machine.connectingCount == 1 && machine.waiterCount == 1)
        #expect(machine.connected(1, now: t0) == .lease(connection: 1, waiter: 1))
        #expect(machine.leasedCount == 1 && machine.waiterCount == 0)

        #expect(machine.release(1, isActive: true, now: t0) == .none)
        #expect(machine.idleCount == 1 && machine.isIdle(1))
        #expect(machine.leaseIdle() == 1)
        #expect(machine.release(1, isActive: true, now: t0) == .none)
        #expect(machine.lease(waiter: 2, now: t0) == .lease(connection: 1))
        #expect(machine.connectingCount == 0)
    }

    /// Callers beyond the pool size queue, and returned connections go to them in arrival order.
    @Test func callersBeyondSizeQueueInOrder() {
        var machine = ConnectionPoolStateMachine(maxConnections: 2)
        #expect(machine.lease(waiter: 1, now: t0) == .waitAndConnect(connection: 1))
        #expect(machine.lease(waiter: 2, now: t0) == .waitAndConnect(connection: 2))
        #expect(machine.lease(waiter: 3, now: t0) == .wait)
        #expect(machine.lease(waiter: 4, now: t0) == .wait)
        #expect(machine.connected(2, now: t0) == .lease(connection: 2, waiter: 1))
        #expect(machine.connected(1, now: t0) == .lease(connection: 1, waiter: 2))
        #expect(machine.release(1, isActive: true, now: t0) == .lease(connection: 1, waiter: 3))
        #expect(machine.release(2, isActive: true, now: t0) == .lease(connection: 2, waiter: 4))
        #expect(machine.release(1, isActive: true, now: t0) == .none)
        #expect(machine.leasedCount == 1 && machine.idleCount == 1 && machine.waiterCount == 0)
    }

    /// A failed connect fails the waiters only when nothing else could serve them: not while another
    /// connect is under way, but once the last one has failed too.
    @Test func connectFailureFailsWaitersOnlyWhenNothingIsLive() {
        var machine = ConnectionPoolStateMachine(maxConnections: 2)
        #expect(machine.lease(waiter: 1, now: t0) == .waitAndConnect(connection: 1))
        #expect(machine.lease(waiter: 2, now: t0) == .waitAndConnect(connection: 2))
        #expect(machine.connectFailed(refused, now: t0, backoff: .milliseconds(100)) == .none)
        #expect(machine.waiterCount == 2)
        #expect(machine.connectFailed(refused, now: t0, backoff: .milliseconds(200)) == .failWaiters([1, 2], refused))
        #expect(machine.waiterCount == 0 && machine.failuresInARow == 2)
    }

    /// A failed connect leaves the waiter queued while a leased connection may still come back to it.
    @Test func connectFailureKeepsWaitersWhileAConnectionIsLeased() {
        var machine = ConnectionPoolStateMachine(maxConnections: 2)
        _ = machine.lease(waiter: 1, now: t0)
        #expect(machine.connected(1, now: t0) == .lease(connection: 1, waiter: 1))
        #expect(machine.lease(waiter: 2, now: t0) == .waitAndConnect(connection: 2))
        #expect(machine.connectFailed(refused, now: t0, backoff: .milliseconds(100)) == .none)
        #expect(machine.waiterCount == 1)
        #expect(machine.release(1, isActive: true, now: t0) == .lease(connection: 1, waiter: 2))
    }

    /// While backing off with nothing live, a lease fails at once with the last connect error; once the
    /// backoff has passed, it tries to connect again.
    @Test func backoffFailsFastThenRetries() {
        var machine = ConnectionPoolStateMachine(maxConnections: 2)
        _ = machine.lease(waiter: 1, now: t0)
        #expect(machine.connectFailed(refused, now: t0, backoff: .milliseconds(100)) == .failWaiters([1], refused))

        #expect(machine.lease(waiter: 2, now: t0 + .milliseconds(99)) == .fail(refused))
        #expect(machine.waiterCount == 0 && machine.connectingCount == 0)
        #expect(machine.lease(waiter: 3, now: t0 + .milliseconds(100)) == .waitAndConnect(connection: 2))
    }

    /// While backing off but with a connection leased, a lease queues for it instead of failing or connecting.
    @Test func backoffQueuesWhenSomethingIsLeased() {
        var machine = ConnectionPoolStateMachine(maxConnections: 3)
        _ = machine.lease(waiter: 1, now: t0)
        _ = machine.connected(1, now: t0)
        #expect(machine.lease(waiter: 2, now: t0) == .waitAndConnect(connection: 2))
        #expect(machine.connectFailed(refused, now: t0, backoff: .seconds(1)) == .none)
        #expect(machine.lease(waiter: 3, now: t0 + .milliseconds(10)) == .wait)
        #expect(machine.connectingCount == 0 && machine.waiterCount == 2)
        #expect(machine.release(1, isActive: true, now: t0) == .lease(connection: 1, waiter: 2))
    }

    /// A successful connect clears the failure count and the backoff.
    @Test func successfulConnectResetsFailures() {
        var machine = ConnectionPoolStateMachine(maxConnections: 1)
        _ = machine.lease(waiter: 1, now: t0)
        _ = machine.connectFailed(refused, now: t0, backoff: .seconds(10))
        #expect(machine.failuresInARow == 1)
        #expect(machine.lease(waiter: 2, now: t0 + .seconds(10)) == .waitAndConnect(connection: 2))
        #expect(machine.connected(2, now: t0) == .lease(connection: 2, waiter: 2))
        #expect(machine.failuresInARow == 0)
        _ = machine.release(2, isActive: false, now: t0 + .seconds(10))
        // No backoff left over: the next caller connects at once.
        #expect(machine.lease(waiter: 3, now: t0 + .seconds(10)) == .waitAndConnect(connection: 3))
    }

    /// A leased connection that died is replaced when someone waits, unless the pool is backing off.
    @Test func lostConnectionIsReplacedForWaiters() {
        var machine = ConnectionPoolStateMachine(maxConnections: 1)
        _ = machine.lease(waiter: 1, now: t0)
        _ = machine.connected(1, now: t0)
        #expect(machine.lease(waiter: 2, now: t0) == .wait)
        #expect(machine.release(1, isActive: false, now: t0) == .connect(connection: 2))
        #expect(machine.connectingCount == 1 && machine.leasedCount == 0)

        // Without waiters a dead connection is just forgotten.
        #expect(machine.connected(2, now: t0) == .lease(connection: 2, waiter: 2))
        #expect(machine.release(2, isActive: false, now: t0) == .none)
        #expect(machine.leasedCount == 0 && machine.idleCount == 0 && machine.connectingCount == 0)
    }

    /// Idle connections past the timeout leave the pool longest-idle first, down to the number kept; one
    /// given back since stays, and the next lease takes the most recently returned.
    @Test func idleConnectionsExpireLongestIdleFirst() {
        var machine = ConnectionPoolStateMachine(maxConnections: 4)
        for waiter in 1...4 { _ = machine.lease(waiter: waiter, now: t0) }
        for id in 1...4 { _ = machine.connected(id, now: t0) }
        #expect(machine.release(3, isActive: true, now: t0) == .none)
        #expect(machine.release(1, isActive: true, now: t0 + .seconds(1)) == .none)
        #expect(machine.release(4, isActive: true, now: t0 + .seconds(2)) == .none)
        #expect(machine.release(2, isActive: true, now: t0 + .seconds(50)) == .none)
        // Nothing is idle for 60 s yet.
        #expect(machine.expireIdle(now: t0 + .seconds(59), timeout: .seconds(60), keep: 1).isEmpty)
        // 3 and 1 have been; 4 has not (idle since t0 + 2 s).
        #expect(machine.expireIdle(now: t0 + .seconds(61), timeout: .seconds(60), keep: 1) == [3, 1])
        #expect(machine.idleCount == 2)
        // Much later everything is past the timeout, but one connection is kept: the most recent.
        #expect(machine.expireIdle(now: t0 + .seconds(500), timeout: .seconds(60), keep: 1) == [4])
        #expect(machine.lease(waiter: 5, now: t0 + .seconds(500)) == .lease(connection: 2))
        #expect(machine.expireIdle(now: t0 + .seconds(900), timeout: .seconds(60), keep: 1).isEmpty)
    }

    /// An idle connection that closes leaves the pool; a later caller opens a new one.
    @Test func closedIdleConnectionLeavesThePool() {
        var machine = ConnectionPoolStateMachine(maxConnections: 1)
        _ = machine.lease(waiter: 1, now: t0)
        _ = machine.connected(1, now: t0)
        _ = machine.release(1, isActive: true, now: t0)
        #expect(machine.closed(1, now: t0) == .none)
        #expect(machine.idleCount == 0)
        #expect(machine.closed(1, now: t0) == .none)
        #expect(machine.lease(waiter: 2, now: t0) == .waitAndConnect(connection: 2))
    }

    /// A waiter that gives up leaves the queue once; a returned connection then goes idle.
    @Test func waiterThatGaveUpIsRemoved() {
        var machine = ConnectionPoolStateMachine(maxConnections: 1)
        _ = machine.lease(waiter: 1, now: t0)
        _ = machine.connected(1, now: t0)
        #expect(machine.lease(waiter: 2, now: t0) == .wait)
        let removed = machine.removeWaiter(2)
        let removedAgain = machine.removeWaiter(2)
        #expect(removed && !removedAgain)
        #expect(machine.release(1, isActive: true, now: t0) == .none)
        #expect(machine.idleCount == 1)
    }

    /// Shutdown closes idle connections and fails waiters; afterwards leases fail, returned connections
    /// and late connects are closed.
    @Test func shutdownClosesEverything() {
        var machine = ConnectionPoolStateMachine(maxConnections: 3)
        _ = machine.lease(waiter: 1, now: t0)
        _ = machine.lease(waiter: 2, now: t0)
        _ = machine.lease(waiter: 3, now: t0)
        #expect(machine.connected(1, now: t0) == .lease(connection: 1, waiter: 1))
        #expect(machine.connected(2, now: t0) == .lease(connection: 2, waiter: 2))
        #expect(machine.lease(waiter: 4, now: t0) == .wait)
        #expect(machine.release(1, isActive: true, now: t0) == .lease(connection: 1, waiter: 3))
        #expect(machine.release(1, isActive: true, now: t0) == .lease(connection: 1, waiter: 4))
        #expect(machine.release(1, isActive: true, now: t0) == .none)

        let (close, fail) = machine.shutdown()
        #expect(close == [1] && fail == [])
        #expect(machine.lease(waiter: 5, now: t0) == .fail(.shutdown))
        #expect(machine.leaseIdle() == nil)
        #expect(machine.release(2, isActive: true, now: t0) == .close(connection: 2))
        #expect(machine.connected(3, now: t0) == .close(connection: 3))
        #expect(machine.idleCount == 0 && machine.leasedCount == 0)
    }

    /// Shutdown hands back the queued waiters to fail.
    @Test func shutdownFailsQueuedWaiters() {
        var machine = ConnectionPoolStateMachine(maxConnections: 1)
        _ = machine.lease(waiter: 1, now: t0)
        #expect(machine.lease(waiter: 2, now: t0) == .wait)
        let (close, fail) = machine.shutdown()
        #expect(close == [] && fail == [1, 2])
        #expect(machine.waiterCount == 0)
    }

    /// Returning a connection the pool does not know changes nothing.
    @Test func releasingUnknownConnectionIsIgnored() {
        var machine = ConnectionPoolStateMachine(maxConnections: 1)
        #expect(machine.release(42, isActive: true, now: t0) == .none)
        #expect(machine.idleCount == 0 && machine.leasedCount == 0)
    }
}

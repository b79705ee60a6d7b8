import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import GatewayCore

/// Counts its flushes; optionally queues another handler's flush from inside its own.
private final class CountingFlusher: TickFlushing {
    var tickFlushQueued = false
    var tickFlushQueue: TickFlushQueue?
    var flushes = 0
    var order: (Int) -> Void = { _ in }
    let id: Int
    var onFlush: (() -> Void)?

    init(id: Int) { self.id = id }

    func flushQueuedWrites() {
        flushes += 1
        order(id)
        onFlush?()
    }
}

@Suite struct TickFlushTests {
    /// On a real event loop: handlers are flushed after the task that asked, once however often they
    /// asked, in the order they first asked; a flush queued by a flush runs too.
    @Test func everyAskingHandlerIsFlushedExactlyOnce() throws {
        struct Outcome: Sendable {
            var flushedWhileAsking = -1
            var afterFirstTurn: [Int] = []
            var counts: [Int] = []
            var order: [Int] = []
            var stillQueued: [Bool] = []
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let promise = loop.makePromise(of: Outcome.self)
        loop.execute {
            var outcome = Outcome()
            var order: [Int] = []
            let handlers = (0..<5).map { CountingFlusher(id: $0) }
            let late = CountingFlusher(id: 9)
            for h in handlers + [late] { h.order = { order.append($0) } }
            for _ in 0..<3 { for h in handlers { h.flushAtEndOfTick(on: loop) } }
            outcome.flushedWhileAsking = handlers.map(\.flushes).reduce(0, +)
            // Queued after the flush task.
            loop.assumeIsolated().execute {
                outcome.afterFirstTurn = handlers.map(\.flushes)
                order.removeAll()
                handlers[0].onFlush = { late.flushAtEndOfTick(on: loop) }
                for h in handlers.reversed() { h.flushAtEndOfTick(on: loop) }
                // After the flush task, and after the task the flush of handler 0 queues.
                loop.assumeIsolated().execute {
                    loop.assumeIsolated().execute {
                        outcome.counts = handlers.map(\.flushes) + [late.flushes]
                        outcome.order = order
                        outcome.stillQueued = (handlers + [late]).map(\.tickFlushQueued)
                        promise.succeed(outcome)
                    }
                }
            }
        }
        let outcome = try promise.futureResult.wait()
        #expect(outcome.flushedWhileAsking == 0, "nothing is flushed inside the task that asked")
        #expect(outcome.afterFirstTurn == [1, 1, 1, 1, 1], "one flush for three asks")
        #expect(outcome.counts == [2, 2, 2, 2, 2, 1])
        #expect(outcome.order == [4, 3, 2, 1, 0, 9], "in the order asked; the flush queued by a flush after them")
        #expect(outcome.stillQueued.allSatisfy { !$0 })
    }

    /// Tests put several `EmbeddedEventLoop`s on one thread: each loop's handlers are flushed when that
    /// loop runs its tasks, not another's.
    @Test func embeddedLoopsOnOneThreadKeepTheirOwnFlushes() {
        let a = EmbeddedEventLoop()
        let b = EmbeddedEventLoop()
        let onA = CountingFlusher(id: 1)
        let onB = CountingFlusher(id: 2)
        onA.flushAtEndOfTick(on: a)
        onB.flushAtEndOfTick(on: b)
        #expect(onA.flushes == 0 && onB.flushes == 0)
        b.run()
        #expect(onA.flushes == 0 && onB.flushes == 1)
        a.run()
        #expect(onA.flushes == 1 && onB.flushes == 1)
        // Each handler kept its own loop's queue: asked again while the other loop's queue is the
        // thread's, it is still flushed by its own loop only.
        #expect(onA.tickFlushQueue !== onB.tickFlushQueue)
        onB.flushAtEndOfTick(on: b)
        onA.flushAtEndOfTick(on: a)
        b.run()
        #expect(onA.flushes == 1 && onB.flushes == 2)
        a.run()
        #expect(onA.flushes == 2 && onB.flushes == 2)
    }
}

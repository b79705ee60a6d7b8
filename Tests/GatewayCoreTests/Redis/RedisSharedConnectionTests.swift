import GatewayCore
import GatewayTesting
import Metrics
import MetricsTestKit
import NIOCore
import NIOPosix
import Testing

/// Plain commands from tasks on an event loop share that loop's connection; commands that need a
/// connection of their own never take it; a shared connection that Redis drops comes back.
@Suite("Redis shared connections", .timeLimit(.minutes(1)))
struct RedisSharedConnectionTests {
    /// Runs `body` in a task on `loop`, as the engine runs a request's Redis work.
    private func onLoop<T: Sendable>(_ loop: any EventLoop, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task(executorPreference: EventLoopTaskExecutor(eventLoop: loop)) { try await body() }.value
    }

    /// Until the loop's shared connection is up (the first commands go on leased connections).
    private func waitForSharedConnection(_ client: RedisClient, on loop: any EventLoop) async throws {
        try await waitUntil("the loop's shared connection") {
            try await onLoop(loop) { try await client.ping() }
            return client.pool.sharedCount == 1
        }
    }

    /// 500 concurrent `INCR`s from one loop all get their own reply (1...500) over the one shared
    /// connection: the pool opens no connection for them.
    @Test func concurrentCommandsFromOneLoopShareOneConnection() async throws {
        try await withRedisClient(configure: { $0.poolSize = 4 }) { client, _ async throws in
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            try await waitForSharedConnection(client, on: loop)
            let pooled = client.pool.stats.idle
            let key = uniqueKey("shared")
            let replies = try await onLoop(loop) {
                try await withThrowingTaskGroup(of: Int64?.self) { group in
                    for _ in 0..<500 { group.addTask { try await client.send("INCR", .string(key)).int } }
                    var replies: [Int64] = []
                    for try await reply in group { replies.append(reply ?? -1) }
                    return replies
                }
            }
            #expect(Set(replies) == Set(1...500))
            #expect(client.pool.sharedCount == 1)
            #expect(client.pool.stats.idle == pooled, "the pool opened connections: \(client.pool.stats)")
            #expect(client.pool.stats.leased == 0 && client.pool.stats.waiting == 0)
            // Off an event loop a command still works (on a leased connection).
            #expect(try await client.get(key) == "500")
        }
    }

    /// `MULTI` … `EXEC` pipelines from many tasks on one loop, mixed with plain commands on the same shared
    /// connection, stay whole: each transaction's two increments are consecutive, every command counts
    /// once, and an aborted transaction leaves the connection answering the next commands.
    @Test func transactionsShareTheConnectionWithoutInterleaving() async throws {
        try await withRedisClient { client, _ async throws in
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            try await waitForSharedConnection(client, on: loop)
            let pooled = client.pool.stats.idle
            let key = uniqueKey("tx")
            let pairs = try await onLoop(loop) {
                try await withThrowingTaskGroup(of: [Int64]?.self) { group in
                    for i in 0..<200 {
                        group.addTask {
                            if i % 2 == 0 {
                                _ = try await client.send("INCR", .string(key))
                                return nil
                            }
                            let replies = try await client.transaction([RedisCommand("INCR", .string(key)), RedisCommand("INCR", .string(key))])
                            return replies.map { $0.int ?? -1 }
                        }
                    }
                    var pairs: [[Int64]] = []
                    for try await pair in group { if let pair { pairs.append(pair) } }
                    return pairs
                }
            }
            #expect(pairs.count == 100)
            #expect(pairs.allSatisfy { $0.count == 2 && $0[1] == $0[0] + 1 }, "\(pairs.filter { $0.count != 2 || $0[1] != $0[0] + 1 })")
            // On the loop itself (not through `redisError`, whose worker task runs off the loop).
            let aborted = try await onLoop(loop) { () async throws -> Bool in
                do {
                    _ = try await client.transaction([RedisCommand("INCR", .string(key)), RedisCommand("GET")])
                    return false
                } catch let error as RedisError {
                    guard case .server("EXEC", let message) = error else { return false }
                    return message.hasPrefix("EXECABORT")
                }
            }
            #expect(aborted)
            #expect(try await onLoop(loop) { try await client.get(key) } == "300")
            #expect(client.pool.sharedCount == 1 && client.pool.stats.idle == pooled)
        }
    }

    /// A blocking read sent from the loop takes a leased connection: while it waits for an entry, other
    /// commands from the same loop are answered at once; then the entry reaches the waiting read.
    @Test func blockingCommandsDoNotHoldUpTheSharedConnection() async throws {
        try await withRedisClient { client, _ async throws in
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            try await waitForSharedConnection(client, on: loop)
            let stream = uniqueKey("stream")
            let executor = EventLoopTaskExecutor(eventLoop: loop)
            let blocked = Task(executorPreference: executor) { try await client.xread(stream, after: "$", block: .seconds(5)) }
            // This private server has no other client to block.
            try await waitUntil("the read to block") {
                (try await client.send("INFO", "clients").string ?? "").contains("blocked_clients:1")
            }
            let (_, elapsed) = try await measure {
                try await onLoop(loop) {
                    for i in 0..<20 { try await client.set(uniqueKey("k\(i)"), to: "v") }
                }
            }
            #expect(elapsed < .seconds(2), "commands waited behind the blocked read: \(elapsed)")
            try await client.send("XADD", .string(stream), "*", "field", "value")
            let entries = try await withTimeout(.seconds(5), "the blocked read") { try await blocked.value }
            #expect(entries.count == 1)
            #expect(entries.first?.fields.first?.0 == "field")
        }
    }

    /// Redis restarts: commands in flight on the shared connection fail with an error (none hangs), later
    /// commands are answered again, and the loop gets a new shared connection.
    @Test func sharedConnectionComesBackAfterARedisRestart() async throws {
        try await withRedisClient(configure: {
            $0.initialBackoff = .milliseconds(20)
            $0.maxBackoff = .milliseconds(200)
        }) { client, server async throws in
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            try await waitForSharedConnection(client, on: loop)
            let key = uniqueKey("restart")
            try await onLoop(loop) { try await client.set(key, to: "before") }
            try await server.restart()
            // The first commands may still meet the dropped connection and fail (waitUntil counts an
            // error as not yet); each fails or is answered well within the deadline.
            try await waitUntil("a command answered after the restart", timeout: .seconds(10)) {
                try await onLoop(loop) { try await client.set(key, to: "after") }
                return true
            }
            try await waitForSharedConnection(client, on: loop)
            #expect(try await onLoop(loop) { try await client.get(key) } == "after")
        }
    }

    /// The pool's gauges: the loop's shared connection, the pooled ones by state, no waiters.
    @Test func poolGaugesCountSharedAndPooledConnections() async throws {
        try await withRedisClient { client, _ async throws in
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            try await waitForSharedConnection(client, on: loop)
            let held = try await client.pool.lease()
            let metrics = TestMetrics()
            let gauges = withMetricsFactory(metrics) { RedisPoolMetrics(prefix: "test") }
            gauges.record(client)
            let stats = client.pool.stats
            #expect(try metrics.expectGauge("test_redis_connections", [("state", "shared")]).lastValue == 1)
            #expect(try metrics.expectGauge("test_redis_connections", [("state", "leased")]).lastValue == 1)
            #expect(try metrics.expectGauge("test_redis_connections", [("state", "idle")]).lastValue == Double(stats.idle))
            #expect(try metrics.expectGauge("test_redis_connections", [("state", "connecting")]).lastValue == Double(stats.connecting))
            #expect(try metrics.expectGauge("test_redis_waiters").lastValue == 0)
            client.pool.release(held)
        }
    }

    /// Which commands never go on a shared connection.
    @Test func commandsThatNeedTheirOwnConnection() {
        for name in ["XREAD", "xread", "BLPOP", "SUBSCRIBE", "WATCH", "MULTI", "EXEC", "SELECT", "WAIT", "Client", "QUIT"] {
            #expect(RedisCommand(name).needsOwnConnection, "\(name)")
        }
        for name in ["EVALSHA", "GET", "SET", "INCR", "XADD", "PUBLISH", "hgetall", "SCRIPT"] {
            #expect(!RedisCommand(name).needsOwnConnection, "\(name)")
        }
    }
}

import GatewayCore
import GatewayTesting
import Testing

/// The pool against a real redis-server: sharing, waiting, and what happens while Redis is away.
@Suite("Redis connection pool", .timeLimit(.minutes(1)))
struct RedisConnectionPoolTests {
    /// More concurrent callers than connections all succeed, and the pool never opens more than its size.
    @Test func moreCallersThanConnectionsAllSucceed() async throws {
        try await withRedisClient(configure: { $0.poolSize = 3 }) { client, server async throws in
            let key = uniqueKey("counter")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask { try await client.send("INCR", .string(key)) }
                }
                try await group.waitForAll()
            }
            #expect(try await client.get(key) == "200")

            let stats = client.pool.stats
            #expect(stats.idle >= 1 && stats.idle <= 3)
            #expect(stats.leased == 0 && stats.waiting == 0)
            // Seen from Redis: the pool's connections plus our own admin connection.
            let admin = try await RedisConnection.connect(configuration: server.configuration())
            let clients = try await admin.send(RedisCommand("CLIENT", "LIST")).string ?? ""
            await admin.close()
            let count = clients.split(separator: "\n").count
            #expect(count >= 2 && count <= 4, "CLIENT LIST:\n\(clients)")
        }
    }

    /// Connections opened for a burst are closed once idle past the idle timeout, down to one; Redis sees
    /// them go, and the pool serves the next callers.
    @Test func idleConnectionsAreClosedAfterTheIdleTimeout() async throws {
        try await withRedisClient(configure: {
            $0.poolSize = 4
            $0.idleTimeout = .milliseconds(200)
        }) { client, server async throws in
            var held: [RedisConnection] = []
            for _ in 0..<4 { held.append(try await client.pool.lease()) }
            for connection in held { client.pool.release(connection) }
            #expect(client.pool.stats.idle == 4)
            try await waitUntil("idle connections to be closed", timeout: .seconds(5)) { client.pool.stats.idle == 1 }
            let admin = try await RedisConnection.connect(configuration: server.configuration())
            try await waitUntil("Redis to see them go", timeout: .seconds(5)) {
                let clients = try await admin.send(RedisCommand("CLIENT", "LIST")).string ?? ""
                return clients.split(separator: "\n").count == 2  // the kept one and ours
            }
            await admin.close()
            let key = uniqueKey("after-idle")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 { group.addTask { try await client.send(RedisCommand("INCR", .string(key))) } }
                try await group.waitForAll()
            }
            #expect(try await client.get(key) == "20")
        }
    }

    /// With every connection held, a caller gives up with `.poolTimeout` after the lease timeout, and is
    /// served again once a connection comes back.
    @Test func leaseTimesOutWhenAllConnectionsAreHeld() async throws {
        try await withRedisClient(configure: {
            $0.poolSize = 1
            $0.leaseTimeout = .milliseconds(200)
        }) { client, _ async throws in
            // The first lease also waits for the connect, which a loaded machine may not finish within
            // 200 ms: retry until the pool's only connection is up and held.
            var held: RedisConnection?
            try await waitUntil("the first lease") {
                held = try await client.pool.lease()
                return true
            }
            let (error, elapsed) = try await measure { try await redisError { try await client.ping() } }
            #expect(error == .poolTimeout(after: .milliseconds(200)))
            #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(5), "took \(elapsed)")

            client.pool.release(held!)
            try await client.ping()
            #expect(client.pool.stats.waiting == 0)
        }
    }

    /// A caller waiting for a connection gets it as soon as the holder gives it back.
    @Test func waiterIsServedWhenAConnectionComesBack() async throws {
        try await withRedisClient(configure: {
            $0.poolSize = 1
            $0.leaseTimeout = .seconds(10)
        }) { client, _ async throws in
            let held = try await client.pool.lease()
            let waiter = Task { try await client.send("PING") }
            try await waitUntil("the caller to queue") { client.pool.stats.waiting == 1 }
            client.pool.release(held)
            let reply = try await withTimeout(.seconds(5), "the queued caller") { try await waiter.value }
            #expect(reply == .status("PONG"))
        }
    }

    /// Connecting where nothing listens fails with `.connectionRefused` naming the address.
    @Test func connectRefusedNamesTheAddress() async throws {
        let port = try await LoopbackPort.free()
        let configuration = RedisConfiguration.forTesting(url: RedisURL(host: "127.0.0.1", port: port))

        let direct = try await redisError { try await RedisConnection.connect(configuration: configuration) }
        guard case .connectionRefused(let address, _) = direct else {
            Issue.record("expected connectionRefused, got \(String(describing: direct))")
            return
        }
        #expect(address == "127.0.0.1:\(port)")

        let client = RedisClient(configuration: configuration, logger: .forTesting())
        let pooled = try await redisError { try await client.ping() }
        #expect(pooled?.kind == "connectionRefused")
        #expect(pooled?.isConnectivity == true)
        await client.shutdown()
    }

    /// While Redis is down every command fails fast; once it is back on the same port the same client
    /// works again without being recreated.
    @Test func clientRecoversAfterRedisRestart() async throws {
        try await withRedisClient { client, server async throws in
            let key = uniqueKey("before")
            try await client.set(key, to: "1")

            await server.stop()
            for attempt in 0..<5 {
                let (error, elapsed) = try await measure { try await redisError { try await client.ping() } }
                #expect(error?.isConnectivity == true, "attempt \(attempt): \(String(describing: error))")
                // Fast means: not waiting out the 10 s lease or command timeout.
                #expect(elapsed < .seconds(3), "attempt \(attempt) took \(elapsed)")
            }

            try await server.restart()
            try await waitUntil("the client to reach the restarted server") { (try? await client.ping()) != nil }
            // Nothing is persisted, so the restarted server is empty, and the client writes to it.
            #expect(try await client.get(key) == nil)
            try await client.set(key, to: "2")
            #expect(try await client.get(key) == "2")
        }
    }

    /// A command on a connection that has already closed fails with `.connectionClosed` instead of hanging.
    @Test func commandOnClosedConnectionFailsInsteadOfHanging() async throws {
        try await withRedisServer { server async throws in
            let connection = try await RedisConnection.connect(configuration: server.configuration())
            await connection.close()
            #expect(!connection.isActive)
            let error = try await redisError(within: .seconds(10)) { try await connection.send(RedisCommand("PING")) }
            #expect(error == .connectionClosed(address: server.url.address))
            let pipelined = try await redisError(within: .seconds(10)) {
                try await connection.pipeline([RedisCommand("PING"), RedisCommand("PING")])
            }
            #expect(pipelined == .connectionClosed(address: server.url.address))
        }
    }

    /// After shutdown, callers get `.shutdown`.
    @Test func shutdownPoolRefusesCallers() async throws {
        try await withRedisServer { server async throws in
            let client = RedisClient(configuration: server.configuration(), logger: .forTesting())
            try await client.ping()
            await client.shutdown()
            #expect(try await redisError { try await client.ping() } == .shutdown)
            #expect(client.pool.stats.idle == 0)
        }
    }
}

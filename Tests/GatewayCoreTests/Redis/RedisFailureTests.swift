import GatewayCore
import GatewayTesting
import NIOCore
import Testing

/// Servers that stop answering, answer garbage, or answer too much.
@Suite("Redis failures", .timeLimit(.minutes(1)))
struct RedisFailureTests {
    /// A server that stops answering (SIGSTOP) makes the command fail with `.timeout` after the command
    /// timeout; after it resumes, the same client works again.
    @Test func unresponsiveServerTimesOutAndClientRecoversAfterResume() async throws {
        try await withRedisClient { client, server async throws in
            try await client.set("k", to: "before")
            try await server.pause()
            let (error, elapsed) = try await measure {
                try await redisError { try await client.send(RedisCommand("GET", "k"), timeout: .milliseconds(300)) }
            }
            try await server.resume()
            #expect(error == .timeout(command: "GET", after: .milliseconds(300)))
            // Well before the client's default 10 s command timeout.
            #expect(elapsed >= .milliseconds(290) && elapsed < .seconds(5), "took \(elapsed)")
            #expect(try await client.get("k") == "before")
        }
    }

    /// A command blocked behind a slow one (`DEBUG SLEEP`) times out; commands after it run on a fresh
    /// connection once Redis is free again.
    @Test func slowServerTimesOutWithoutPoisoningThePool() async throws {
        try await withRedisClient(configure: { $0.poolSize = 1 }) { client, _ async throws in
            let error = try await redisError {
                try await client.send(RedisCommand("DEBUG", "SLEEP", .double(0.6)), timeout: .milliseconds(200))
            }
            #expect(error == .timeout(command: "DEBUG", after: .milliseconds(200)))
            // Redis is still asleep for a moment; the client must come back by itself.
            try await waitUntil("the client to work again") { try await client.send("PING") == .status("PONG") }
        }
    }

    /// Bytes that are not RESP fail the command with `.protocolError`; the process carries on, and a client
    /// of a real Redis in the same process is unaffected.
    @Test func garbageReplyIsAProtocolError() async throws {
        try await withRedisClient { healthy, _ in
            try await withFakeTCPServer(.reply(FakeTCPServer.garbage)) { fake async throws in
                let client = RedisClient(configuration: .forTesting(url: fake.redisURL), logger: .forTesting())
                let error = try await redisError { try await client.ping() }
                guard case .protocolError(let message) = error else {
                    Issue.record("expected protocolError, got \(String(describing: error))")
                    return
                }
                #expect(message.contains("Protocol error"), "\(message)")
                #expect(Array(fake.receivedBytes.prefix(14)) == Array("*1\r\n$4\r\nPING\r\n".utf8))
                await client.shutdown()
                #expect(try await healthy.send("PING") == .status("PONG"))
            }
        }
    }

    /// After a connection is dropped for a protocol error, the same pool serves the next command on a
    /// fresh connection.
    @Test func poolRecoversOnAFreshConnectionAfterGarbage() async throws {
        try await withFakeTCPServer(.reply(FakeTCPServer.garbage), .reply(FakeTCPServer.pong)) { fake async throws in
            let client = RedisClient(configuration: .forTesting(url: fake.redisURL), logger: .forTesting())
            #expect(try await redisError { try await client.ping() }?.kind == "protocolError")
            #expect(try await client.send("PING") == .status("PONG"))
            #expect(fake.acceptedConnections == 2)
            await client.shutdown()
        }
    }

    /// A real reply larger than `maxReplyBytes` fails with `.protocolError`; the next command works on a
    /// fresh connection and the stored value is intact.
    @Test func oversizedReplyIsRefusedAndNextCommandWorks() async throws {
        try await withRedisClient(configure: { $0.maxReplyBytes = 1 << 20 }) { client, _ async throws in
            let big = ByteBuffer(repeating: UInt8(ascii: "x"), count: 2 << 20)
            try await client.send("SET", "big", .bytes(big))
            let error = try await redisError { try await client.send("GET", "big") }
            guard case .protocolError(let message) = error else {
                Issue.record("expected protocolError, got \(String(describing: error))")
                return
            }
            #expect(message.contains("limit"), "\(message)")
            #expect(try await client.send("STRLEN", "big") == .integer(2 << 20))
            try await client.set("small", to: "fine")
            #expect(try await client.get("small") == "fine")
        }
    }

    /// A bulk header announcing a near-terabyte body, followed by more bytes than the limit, is refused as
    /// soon as the limit is passed.
    @Test func hugeBulkHeaderWithDataPastTheLimitIsRefused() async throws {
        let flood = FakeTCPServer.oversizedBulkHeader + [UInt8](repeating: UInt8(ascii: "y"), count: 2 << 20)
        try await withFakeTCPServer(.reply(flood)) { fake async throws in
            var configuration = RedisConfiguration.forTesting(url: fake.redisURL)
            configuration.maxReplyBytes = 1 << 20
            let client = RedisClient(configuration: configuration, logger: .forTesting())
            let error = try await redisError { try await client.ping() }
            #expect(error?.kind == "protocolError", "\(String(describing: error))")
            await client.shutdown()
        }
    }

    /// A bulk header announcing a near-terabyte body with nothing after it allocates nothing and ends in
    /// `.timeout`.
    @Test func hugeBulkHeaderAloneEndsInTimeout() async throws {
        try await withFakeTCPServer(.reply(FakeTCPServer.oversizedBulkHeader)) { fake async throws in
            var configuration = RedisConfiguration.forTesting(url: fake.redisURL)
            configuration.commandTimeout = .milliseconds(200)
            let client = RedisClient(configuration: configuration, logger: .forTesting())
            #expect(try await redisError { try await client.get("k") } == .timeout(command: "GET", after: .milliseconds(200)))
            await client.shutdown()
        }
    }

    /// An array header announcing a billion elements is refused before anything is allocated for it.
    @Test func hugeArrayHeaderIsRefused() async throws {
        try await withFakeTCPServer(.reply(FakeTCPServer.oversizedArrayHeader)) { fake async throws in
            let client = RedisClient(configuration: .forTesting(url: fake.redisURL), logger: .forTesting())
            let error = try await redisError { try await client.send("KEYS", "*") }
            #expect(error?.kind == "protocolError", "\(String(describing: error))")
            await client.shutdown()
        }
    }

    /// A server that hangs up instead of answering fails the command with `.connectionClosed`.
    @Test func serverHangingUpClosesTheCommand() async throws {
        try await withFakeTCPServer(.reply([], thenClose: true)) { fake async throws in
            let client = RedisClient(configuration: .forTesting(url: fake.redisURL), logger: .forTesting())
            #expect(try await redisError { try await client.ping() } == .connectionClosed(address: fake.redisURL.address))
            await client.shutdown()
        }
    }

    /// A server that accepts but never answers ends in `.timeout`, not a hang.
    @Test func silentServerEndsInTimeout() async throws {
        try await withFakeTCPServer(.silent) { fake async throws in
            var configuration = RedisConfiguration.forTesting(url: fake.redisURL)
            configuration.commandTimeout = .milliseconds(200)
            let client = RedisClient(configuration: configuration, logger: .forTesting())
            #expect(try await redisError { try await client.ping() } == .timeout(command: "PING", after: .milliseconds(200)))
            await client.shutdown()
        }
    }

    /// A reply nobody asked for makes the client drop the connection (no crash); later commands on it fail
    /// at once.
    @Test func unsolicitedReplyDropsTheConnection() async throws {
        try await withFakeTCPServer(.sendOnConnect(Array("+HELLO\r\n".utf8))) { fake async throws in
            let connection = try await RedisConnection.connect(configuration: .forTesting(url: fake.redisURL))
            try await waitUntil("the connection to be dropped") { !connection.isActive }
            let error = try await redisError(within: .seconds(10)) { try await connection.send(RedisCommand("PING")) }
            // Which of the two depends on whether the channel's handler was already removed.
            #expect(["protocolError", "connectionClosed"].contains(error?.kind), "\(String(describing: error))")
        }
    }
}

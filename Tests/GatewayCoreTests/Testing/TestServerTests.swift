import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOPosix
import Testing

/// The test servers themselves: a broken fixture would make every other test meaningless.
@Suite("Test servers", .timeLimit(.minutes(1)))
struct TestServerTests {
    /// A started server answers PING on its loopback port, and tearDown kills it and removes its directory.
    @Test func redisServerStartsAnswersAndIsCleanedUp() async throws {
        let server = try await RedisServerProcess.start()
        let pid: Int32
        do {
            #expect(try await RawTCP.redisPing(port: server.port, timeout: .seconds(5)) == "+PONG")
            pid = try #require(await server.processIdentifier)
            #expect(FileManager.default.fileExists(atPath: server.directory + "/redis.pid"))
        } catch {
            await server.tearDown()
            throw error
        }

        await server.tearDown()
        #expect(await server.processIdentifier == nil)
        #expect(!FileManager.default.fileExists(atPath: server.directory))
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(pid)"))
        let error = try await redisError {
            try await RedisConnection.connect(configuration: .forTesting(url: RedisURL(host: "127.0.0.1", port: server.port)))
        }
        #expect(error?.kind == "connectionRefused")
    }

    /// A restarted server is back on the same port, as a new process with an empty data set.
    @Test func restartKeepsThePortAndEmptiesTheData() async throws {
        try await withRedisClient { client, server async throws in
            try await client.set("k", to: "v")
            let firstPID = await server.processIdentifier
            try await server.restart()
            #expect(await server.processIdentifier != firstPID)
            #expect(try await RawTCP.redisPing(port: server.port, timeout: .seconds(5)) == "+PONG")
            try await waitUntil("the client to reconnect") { (try? await client.ping()) != nil }
            #expect(try await client.get("k") == nil)
        }
    }

    /// A paused server accepts connections but answers nothing until resumed.
    @Test func pausedServerAnswersOnlyAfterResume() async throws {
        try await withRedisServer { server async throws in
            try await server.pause()
            // No answer: the probe times out (in connect or in read, depending on how busy the machine is).
            let reply = try? await RawTCP.redisPing(port: server.port, timeout: .milliseconds(300))
            #expect(reply == nil)
            try await server.resume()
            #expect(try await RawTCP.redisPing(port: server.port, timeout: .seconds(5)) == "+PONG")
        }
    }

    /// A server with a password answers NOAUTH to an anonymous PING and still counts as started.
    @Test func passwordProtectedServerStarts() async throws {
        try await withRedisServer(.init(password: "pw")) { server async throws in
            #expect(try await RawTCP.redisPing(port: server.port, timeout: .seconds(5))?.hasPrefix("-NOAUTH") == true)
            #expect(server.url.password == "pw")
        }
    }

    /// A binary that does not exist is reported as such, naming the variable that chooses it.
    @Test func missingBinaryIsReported() async throws {
        let error = await #expect(throws: RedisServerProcessError.self) {
            try await RedisServerProcess.start(.init(binary: "/nonexistent/redis-server"))
        }
        #expect(error?.description.contains("REDIS_SERVER_BIN") == true)
    }

    /// A server that cannot start (a bad option) fails with its own error text instead of hanging.
    @Test func serverThatExitsReportsItsOutput() async throws {
        let error = await #expect(throws: RedisServerProcessError.self) {
            try await RedisServerProcess.start(.init(extraArguments: ["--no-such-option", "1"]))
        }
        #expect(error?.description.contains("no-such-option") == true, "\(String(describing: error))")
    }

    /// The fake server sends its bytes on connect, records what it reads, and gives each connection the
    /// behaviour in its turn, the last one repeating.
    @Test func fakeServerFollowsItsBehavioursInOrder() async throws {
        try await withFakeTCPServer(.sendOnConnect(Array("hello\r\n".utf8), thenClose: true), .reply(Array("+OK\r\n".utf8))) { fake async throws in
            let greeting = try await RawTCP.exchange(port: fake.port, request: []) { $0.count >= 7 }
            #expect(greeting == Array("hello\r\n".utf8))
            for _ in 0..<2 {
                let answer = try await RawTCP.exchange(port: fake.port, request: Array("PING\r\n".utf8)) { $0.count >= 5 }
                #expect(answer == Array("+OK\r\n".utf8))
            }
            #expect(fake.acceptedConnections == 3)
            #expect(fake.receivedBytes == Array("PING\r\nPING\r\n".utf8))
        }
    }

    /// Tearing a fake server down while clients are still connecting neither crashes the test process nor
    /// leaves connections open (an unconsumed accepted `NIOAsyncChannel` used to trip a NIO precondition).
    @Test func fakeServerTeardownWithConnectsInFlightIsSafe() async throws {
        for _ in 0..<100 {
            try await withFakeTCPServer(.silent) { fake async throws in
                let port = fake.port
                for _ in 0..<5 {
                    Task {
                        let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                            .connect(host: "127.0.0.1", port: port).get()
                        try? await channel?.close()
                    }
                }
            }
        }
    }

    /// A free loopback port can be bound right after it is handed out.
    @Test func loopbackPortCanBeBound() async throws {
        let port = try await LoopbackPort.free()
        #expect(port > 0 && port < 65536)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: port).get()
        #expect(channel.localAddress?.port == port)
        try await channel.close()
    }
}

import GatewayCore
import GatewayTesting
import Logging
import Testing

/// AUTH and SELECT on connect, against servers with passwords and ACL users.
@Suite("Redis authentication and database selection", .timeLimit(.minutes(1)))
struct RedisAuthenticationTests {
    static let password = "s3cret-pass"

    /// A wrong password fails with `.authenticationFailed` carrying Redis's WRONGPASS text.
    @Test func wrongPasswordFailsWithWrongpass() async throws {
        try await withRedisServer(.init(password: Self.password)) { server async throws in
            let configuration = server.configuration(url: server.url(password: "not-the-password"))
            let direct = try await redisError { try await RedisConnection.connect(configuration: configuration) }
            #expect(direct == .authenticationFailed(message: "WRONGPASS invalid username-password pair or user is disabled."))

            let client = RedisClient(configuration: configuration, logger: .forTesting())
            let pooled = try await redisError { try await client.ping() }
            #expect(pooled == .authenticationFailed(message: "WRONGPASS invalid username-password pair or user is disabled."))
            #expect(pooled?.isConnectivity == false)
            await client.shutdown()
        }
    }

    /// The right password works; no password at all gets Redis's NOAUTH error on the first command.
    @Test func rightPasswordWorksAndMissingPasswordGetsNoauth() async throws {
        try await withRedisServer(.init(password: Self.password)) { server async throws in
            let client = RedisClient(configuration: server.configuration(), logger: .forTesting())
            try await client.set("k", to: "v")
            #expect(try await client.get("k") == "v")
            await client.shutdown()

            let anonymous = RedisClient(configuration: server.configuration(url: server.url()), logger: .forTesting())
            let error = try await redisError { try await anonymous.get("k") }
            #expect(error == .server(command: "GET", message: "NOAUTH Authentication required."))
            await anonymous.shutdown()
        }
    }

    /// An ACL user logs in with its own name and password, and Redis sees that user.
    @Test func aclUserWithPasswordWorks() async throws {
        let alice = RedisServerProcess.User(name: "alice", password: "alice-pass")
        try await withRedisServer(.init(password: Self.password, users: [alice])) { server async throws in
            let client = RedisClient(
                configuration: server.configuration(url: server.url(user: "alice", password: "alice-pass")),
                logger: .forTesting())
            #expect(try await client.send("ACL", "WHOAMI") == .bulk("alice"))
            try await client.set("owned-by-alice", to: "yes")
            #expect(try await client.get("owned-by-alice") == "yes")
            await client.shutdown()

            let wrong = try await redisError {
                try await RedisConnection.connect(
                    configuration: server.configuration(url: server.url(user: "alice", password: Self.password)))
            }
            #expect(wrong == .authenticationFailed(message: "WRONGPASS invalid username-password pair or user is disabled."))
        }
    }

    /// The database in the URL is selected on every pooled connection: keys in db 3 are invisible in db 0.
    @Test func databaseFromURLIsolatesKeys() async throws {
        try await withRedisServer { server async throws in
            let db0 = RedisClient(
                configuration: server.configuration(url: try RedisURL(parsing: "redis://127.0.0.1:\(server.port)/0")), logger: .forTesting())
            let db3 = RedisClient(
                configuration: server.configuration(url: try RedisURL(parsing: "redis://127.0.0.1:\(server.port)/3")), logger: .forTesting())

            try await db3.set("shared-name", to: "in-3")
            #expect(try await db0.get("shared-name") == nil)
            try await db0.set("shared-name", to: "in-0")

            // Many concurrent reads, so several pooled connections are opened: each must be on db 3.
            let values = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<40 { group.addTask { try await db3.get("shared-name") } }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(values.allSatisfy { $0 == "in-3" })
            #expect(try await db0.get("shared-name") == "in-0")
            #expect(try await db3.send("DBSIZE") == .integer(1))
            #expect(try await db0.send("DBSIZE") == .integer(1))
            await db0.shutdown()
            await db3.shutdown()
        }
    }

    /// A database index Redis does not have fails the connect with Redis's SELECT error.
    @Test func missingDatabaseFailsConnect() async throws {
        try await withRedisServer { server async throws in
            let error = try await redisError {
                try await RedisConnection.connect(configuration: server.configuration(url: server.url(database: 99)))
            }
            #expect(error == .server(command: "SELECT", message: "ERR DB index is out of range"))
        }
    }

    /// Failed connects are logged, but the password never appears in the logs.
    @Test func connectFailureLogsNeverContainThePassword() async throws {
        let logs = InMemoryLogHandler.Store()
        try await withRedisServer(.init(password: Self.password)) { server async throws in
            let client = RedisClient(
                configuration: server.configuration(url: server.url(user: "default", password: "hunter2-wrong")),
                logger: logs.logger(label: "redis"))
            for _ in 0..<3 { _ = try await redisError { try await client.ping() } }
            await client.shutdown()
        }
        let entries = logs.entries
        #expect(entries.contains { $0.level == .warning && $0.message == "redis connect failed" })
        #expect(entries.contains { $0.text.contains("redis://default:***@127.0.0.1") })
        #expect(!entries.contains { $0.text.contains("hunter2") }, "\(entries)")
    }
}

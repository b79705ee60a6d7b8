import GatewayCore
import GatewayTesting
import Testing

/// Lua scripts run by SHA1 with `EVALSHA`.
@Suite("Redis scripts", .timeLimit(.minutes(1)))
struct RedisScriptTests {
    static let incrementBy = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")

    /// The script's SHA1 is the one Redis computes for the same source.
    @Test func sha1MatchesRedis() async throws {
        try await withSharedRedisClient { client async throws in
            let loaded = try await client.send("SCRIPT", "LOAD", .string(Self.incrementBy.source))
            #expect(loaded == .bulk(Self.incrementBy.sha1))
            #expect(Self.incrementBy.sha1.count == 40)
        }
    }

    /// EVALSHA loads a script Redis does not know yet, and loads it again after `SCRIPT FLUSH`.
    @Test func evalshaReloadsScriptAfterFlush() async throws {
        try await withRedisClient { client, _ async throws in
            let sha = RedisArgument.string(Self.incrementBy.sha1)
            #expect(try await client.send("SCRIPT", "EXISTS", sha) == .array([.integer(0)]))

            #expect(try await client.evalScript(Self.incrementBy, keys: ["counter"], arguments: [5]) == .integer(5))
            #expect(try await client.send("SCRIPT", "EXISTS", sha) == .array([.integer(1)]))

            try await client.send("SCRIPT", "FLUSH")
            #expect(try await client.send("SCRIPT", "EXISTS", sha) == .array([.integer(0)]))
            #expect(try await client.evalScript(Self.incrementBy, keys: ["counter"], arguments: [5]) == .integer(10))
            #expect(try await client.send("SCRIPT", "EXISTS", sha) == .array([.integer(1)]))
        }
    }

    /// An error raised inside a script is reported with Redis's text, not mistaken for NOSCRIPT.
    @Test func scriptErrorIsReportedAsIs() async throws {
        try await withSharedRedisClient { client async throws in
            let failing = RedisScript("return redis.error_reply('RATELIMIT bucket " + uniqueKey() + " is broken')")
            let error = try await redisError { try await client.evalScript(failing, keys: []) }
            #expect(error?.serverErrorCode == "RATELIMIT")
            guard case .server(let command, _) = error else {
                Issue.record("expected a server error, got \(String(describing: error))")
                return
            }
            #expect(command == "EVALSHA")
        }
    }
}

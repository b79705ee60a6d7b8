import GatewayCore
import GatewayTesting
import Testing

/// Many commands in flight on one connection.
@Suite("Redis pipelining", .timeLimit(.minutes(1)))
struct RedisPipeliningTests {
    /// 10,000 commands written as one pipeline come back as 10,000 replies in command order.
    @Test func tenThousandPipelinedCommandsReplyInOrder() async throws {
        try await withSharedRedisClient { client async throws in
            let key = uniqueKey("pipeline")
            let commands = (0..<10_000).map { RedisCommand("RPUSH", .string(key), .int($0)) }
            let replies = try await client.pool.withConnection { connection throws(RedisError) in
                try await connection.pipeline(commands)
            }
            #expect(replies.count == 10_000)
            #expect(replies == (1...10_000).map { RedisValue.integer(Int64($0)) })
            let stored = try await client.send("LRANGE", .string(key), 0, -1).array ?? []
            #expect(stored.map(\.string) == (0..<10_000).map { String($0) })
            try await client.delete(key)
        }
    }

    /// 10,000 commands sent concurrently on one connection each get their own reply, not a neighbour's.
    @Test func concurrentCommandsOnOneConnectionGetTheirOwnReplies() async throws {
        try await withSharedRedisClient { client async throws in
            let connection = try await client.pool.lease()
            defer { client.pool.release(connection) }
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<10_000 {
                    group.addTask {
                        let reply = try await connection.send(RedisCommand("ECHO", .string("message-\(i)")))
                        return reply == .bulk("message-\(i)") ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            #expect(connection.isActive)
        }
    }
}

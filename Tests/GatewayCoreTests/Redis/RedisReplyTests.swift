import GatewayCore
import GatewayTesting
import NIOCore
import Testing

/// Every RESP2 reply type, as a real redis-server sends it.
@Suite("Redis replies", .timeLimit(.minutes(1)))
struct RedisReplyTests {
    /// A status reply arrives as `.status` with Redis's text.
    @Test func statusReplyCarriesRedisText() async throws {
        try await withSharedRedisClient { client async throws in
            #expect(try await client.send("PING") == .status("PONG"))
            #expect(try await client.send("SET", .string(uniqueKey("status")), "v") == .status("OK"))
        }
    }

    /// Bulk strings are binary safe: CR LF, NUL, every byte value and text that looks like RESP survive a
    /// round trip byte for byte.
    @Test func bulkReplyIsBinarySafe() async throws {
        let bytes: [UInt8] = Array(0...255) + Array("\r\n\0\0$3\r\nfoo\r\n*-1\r\n".utf8) + [0, 13, 10, 0]
        try await withSharedRedisClient { client async throws in
            let key = uniqueKey("binary")
            try await client.send("SET", .string(key), .bytes(ByteBuffer(bytes: bytes)))
            let reply = try await client.send("GET", .string(key))
            guard case .bulk(let buffer) = reply else {
                Issue.record("expected a bulk reply, got \(reply)")
                return
            }
            #expect(Array(buffer.readableBytesView) == bytes)
            #expect(try await client.send("STRLEN", .string(key)) == .integer(Int64(bytes.count)))
        }
    }

    /// An empty bulk string is an empty `.bulk`, not `.null`.
    @Test func emptyBulkIsNotNull() async throws {
        try await withSharedRedisClient { client async throws in
            let key = uniqueKey("empty")
            try await client.set(key, to: "")
            #expect(try await client.send("GET", .string(key)) == .bulk(""))
            #expect(try await client.get(key) == "")
        }
    }

    /// Integer replies are `.integer`, including negative numbers and the 64-bit extremes.
    @Test func integerRepliesKeepSignAndWidth() async throws {
        try await withSharedRedisClient { client async throws in
            let key = uniqueKey("int")
            #expect(try await client.send("INCRBY", .string(key), 5) == .integer(5))
            #expect(try await client.send("DECRBY", .string(key), 12) == .integer(-7))
            try await client.set(key, to: String(Int64.max - 1))
            #expect(try await client.send("INCR", .string(key)) == .integer(Int64.max))
            try await client.set(key, to: String(Int64.min + 1))
            #expect(try await client.send("DECR", .string(key)) == .integer(Int64.min))
        }
    }

    /// A missing key is `.null` (nil bulk), and so is a timed-out blocking pop (nil multi-bulk).
    @Test func missingValuesAreNull() async throws {
        try await withSharedRedisClient { client async throws in
            let missing = uniqueKey("missing")
            #expect(try await client.send("GET", .string(missing)) == .null)
            #expect(try await client.get(missing) == nil)
            #expect(try await client.send("HGET", .string(missing), "field") == .null)
            #expect(try await client.send("BLPOP", .string(missing), .double(0.01)) == .null)
        }
    }

    /// An error reply throws `.server` with the command's name and Redis's exact text.
    @Test func errorReplyThrowsWithRedisText() async throws {
        try await withSharedRedisClient { client async throws in
            let key = uniqueKey("err")
            try await client.set(key, to: "not a number")
            let notInteger = try await redisError { try await client.send("INCR", .string(key)) }
            #expect(notInteger == .server(command: "INCR", message: "ERR value is not an integer or out of range"))

            let wrongType = try await redisError { try await client.send("LPUSH", .string(key), "x") }
            #expect(wrongType == .server(command: "LPUSH", message: "WRONGTYPE Operation against a key holding the wrong kind of value"))
            #expect(wrongType?.serverErrorCode == "WRONGTYPE")
            #expect(wrongType?.isConnectivity == false)

            let unknown = try await redisError { try await client.send("NOSUCHCOMMAND", "a") }
            guard case .server(let command, let message) = unknown else {
                Issue.record("expected a server error, got \(String(describing: unknown))")
                return
            }
            #expect(command == "NOSUCHCOMMAND")
            #expect(message.hasPrefix("ERR unknown command 'NOSUCHCOMMAND'"))
            // The connection is still usable after error replies.
            #expect(try await client.get(key) == "not a number")
        }
    }

    /// Nested arrays (a Lua script returning nested tables) keep their shape and each element's type.
    @Test func nestedArraysFromEvalKeepShapeAndTypes() async throws {
        try await withSharedRedisClient { client async throws in
            let reply = try await client.send(
                "EVAL", "return {1, {2, {'three', {4, false}}}, 'x', {}}", 0)
            #expect(
                reply
                    == .array([
                        .integer(1),
                        .array([.integer(2), .array([.bulk("three"), .array([.integer(4), .null])])]),
                        .bulk("x"),
                        .array([]),
                    ]))
        }
    }

    /// A script's status and error replies come through as `.status` and as `.server` with the script's text.
    @Test func scriptStatusAndErrorReplies() async throws {
        try await withSharedRedisClient { client async throws in
            #expect(try await client.send("EVAL", "return redis.status_reply('FINE')", 0) == .status("FINE"))
            let error = try await redisError { try await client.send("EVAL", "return redis.error_reply('MYERR custom failure')", 0) }
            #expect(error == .server(command: "EVAL", message: "MYERR custom failure"))
        }
    }

    /// In a pipeline, error replies stay in their place as `.error` and do not fail the other commands.
    @Test func pipelineKeepsErrorRepliesInPlace() async throws {
        try await withSharedRedisClient { client async throws in
            let key = uniqueKey("pipe")
            let replies = try await client.pipeline([
                RedisCommand("SET", .string(key), "1"),
                RedisCommand("INCR", .string(key)),
                RedisCommand("LPUSH", .string(key), "x"),
                RedisCommand("GET", .string(key)),
            ])
            #expect(
                replies == [
                    .status("OK"), .integer(2),
                    .error("WRONGTYPE Operation against a key holding the wrong kind of value"), .bulk("2"),
                ])
        }
    }

    /// A transaction returns EXEC's replies; a command Redis refuses while queueing aborts it with EXECABORT.
    @Test func transactionReturnsExecRepliesAndReportsAbort() async throws {
        try await withSharedRedisClient { client async throws in
            let key = uniqueKey("tx")
            let results = try await client.transaction([
                RedisCommand("INCR", .string(key)),
                RedisCommand("INCRBY", .string(key), 10),
            ])
            #expect(results == [.integer(1), .integer(11)])

            let abort = try await redisError {
                try await client.transaction([RedisCommand("INCR", .string(key)), RedisCommand("GET")])
            }
            guard case .server("EXEC", let message) = abort else {
                Issue.record("expected EXEC to fail, got \(String(describing: abort))")
                return
            }
            #expect(message.hasPrefix("EXECABORT"))
            #expect(try await client.get(key) == "11")
        }
    }

    /// The typed helpers: hashes, deletes and expiries.
    @Test func typedHelpersRoundTrip() async throws {
        try await withSharedRedisClient { client async throws in
            let hash = uniqueKey("hash")
            try await client.hset(hash, fields: [("a", "1"), ("b", "two words"), ("c", "")])
            #expect(try await client.hgetall(hash) == ["a": "1", "b": "two words", "c": ""])
            #expect(try await client.hgetall(uniqueKey("nohash")) == [:])

            let expiring = uniqueKey("ttl")
            try await client.set(expiring, to: "v", expiry: .seconds(30))
            let ttl = try await client.send("PTTL", .string(expiring)).int ?? -1
            #expect(ttl > 25_000 && ttl <= 30_000)

            #expect(try await client.delete(hash, expiring, uniqueKey("never")) == 2)
            #expect(try await client.get(expiring) == nil)
        }
    }
}

import GatewayCore
import GatewayTesting
import Testing

/// Streams: XADD, XRANGE and blocking XREAD.
@Suite("Redis streams", .timeLimit(.minutes(1)))
struct RedisStreamTests {
    /// XADD returns increasing ids; XRANGE returns the entries oldest first with their fields in order.
    @Test func xaddThenXrangeReturnsEntriesInOrder() async throws {
        try await withSharedRedisClient { client async throws in
            let stream = uniqueKey("stream")
            let first = try await client.xadd(stream, fields: [("kind", "route"), ("name", "orders")])
            let second = try await client.xadd(stream, fields: [("kind", "policy"), ("name", "limits"), ("kind", "dup")])
            #expect(RedisStreamID(first)! < RedisStreamID(second)!)

            let entries = try await client.xrange(stream)
            #expect(entries.map(\.id) == [first, second])
            #expect(entries[0] == RedisStreamEntry(id: first, fields: [("kind", "route"), ("name", "orders")]))
            #expect(entries[1].fields.map(\.0) == ["kind", "name", "kind"])
            #expect(entries[1]["kind"] == "policy")
            #expect(try await client.xrange(stream, from: second).map(\.id) == [second])
            #expect(try await client.xrange(stream, count: 1).map(\.id) == [first])
            #expect(try await client.xfirstID(stream) == first)
            #expect(try await client.xrange(uniqueKey("nostream")) == [])
        }
    }

    /// An explicit id is kept, and an id not above the last one is refused with Redis's text.
    @Test func explicitIdsMustIncrease() async throws {
        try await withSharedRedisClient { client async throws in
            let stream = uniqueKey("ids")
            #expect(try await client.xadd(stream, id: "5-1", fields: [("a", "1")]) == "5-1")
            let error = try await redisError { try await client.xadd(stream, id: "5-0", fields: [("a", "2")]) }
            #expect(error?.serverErrorCode == "ERR")
            guard case .server(_, let message) = error else {
                Issue.record("expected a server error, got \(String(describing: error))")
                return
            }
            #expect(message.contains("equal or smaller than the target stream top item"))
        }
    }

    /// `maxLength` trims the stream to about that many entries.
    @Test func xaddWithMaxLengthTrims() async throws {
        try await withSharedRedisClient { client async throws in
            let stream = uniqueKey("trim")
            for i in 0..<300 { try await client.xadd(stream, fields: [("i", String(i))], maxLength: 10) }
            let length = try await client.send("XLEN", .string(stream)).int ?? 0
            // Approximate trimming (~) removes whole macro nodes, so a little more than 10 may remain.
            #expect(length >= 10 && length < 300, "length \(length)")
            #expect(try await client.xrange(stream, count: 1).first?["i"] != "0")
        }
    }

    /// A blocked XREAD returns as soon as another task appends an entry.
    @Test func blockedXreadReturnsWhenAnotherTaskAppends() async throws {
        try await withRedisClient { client, _ async throws in
            let stream = "events"
            let last = try await client.xadd(stream, fields: [("n", "0")])
            let reader = Task { try await client.xread(stream, after: last, block: .seconds(30)) }
            // Wait until Redis reports the reader as blocked, so the append really wakes it up.
            try await waitUntil("the reader to block") {
                let info = try await client.send("INFO", "clients").string ?? ""
                return info.contains("blocked_clients:1")
            }
            let (entries, elapsed) = try await measure {
                let added = try await client.xadd(stream, fields: [("n", "1")])
                let entries = try await withTimeout(.seconds(10), "the blocked XREAD") { try await reader.value }
                return (added, entries)
            }
            #expect(entries.1.map(\.id) == [entries.0])
            #expect(entries.1.first?["n"] == "1")
            #expect(elapsed < .seconds(10), "took \(elapsed) of a 30 s block")
        }
    }

    /// A blocked XREAD with nothing new returns an empty list once its block time is over.
    @Test func blockedXreadReturnsEmptyAfterBlockTime() async throws {
        try await withSharedRedisClient { client async throws in
            let stream = uniqueKey("quiet")
            let last = try await client.xadd(stream, fields: [("n", "0")])
            let (entries, elapsed) = try await measure { try await client.xread(stream, after: last, block: .milliseconds(150)) }
            #expect(entries == [])
            #expect(elapsed >= .milliseconds(140) && elapsed < .seconds(5), "took \(elapsed)")
            #expect(try await client.xread(stream, after: "0-0").map(\.id) == [last])
        }
    }

    /// Stream ids parse from `ms-seq` or `ms` and order numerically, not as text.
    @Test func streamIDsParseAndOrderNumerically() {
        #expect(RedisStreamID("1700000000000-3") == RedisStreamID(milliseconds: 1_700_000_000_000, sequence: 3))
        #expect(RedisStreamID("42") == RedisStreamID(milliseconds: 42, sequence: 0))
        #expect(RedisStreamID("9-5")! < RedisStreamID("10-0")!)
        #expect(RedisStreamID("10-2")! < RedisStreamID("10-10")!)
        #expect(RedisStreamID.zero < RedisStreamID("0-1")!)
        #expect(RedisStreamID("10-10")?.description == "10-10")
        for bad in ["", "-", "abc", "1-2-3", "-1", "1-", "1-x", "18446744073709551616-0"] {
            #expect(RedisStreamID(bad) == nil, "\(bad)")
        }
    }
}

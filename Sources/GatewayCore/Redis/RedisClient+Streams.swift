/// One entry of a Redis stream.
public struct RedisStreamEntry: Sendable, Hashable {
    /// The entry id, `<ms>-<seq>`.
    public var id: String
    /// Field-value pairs in the order they were added.
    public var fields: [(String, String)]

    public init(id: String, fields: [(String, String)]) {
        self.id = id
        self.fields = fields
    }

    /// The value of the first field with that name.
    public subscript(field: String) -> String? {
        fields.first { $0.0 == field }?.1
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.id == rhs.id && lhs.fields.elementsEqual(rhs.fields) { $0 == $1 }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        for (k, v) in fields {
            hasher.combine(k)
            hasher.combine(v)
        }
    }
}

/// The ordering of stream ids (`<ms>-<seq>`), for comparing how far readers got.
public struct RedisStreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard let ms = parts.first.flatMap({ UInt64($0) }) else { return nil }
        if parts.count == 1 {
            self.init(milliseconds: ms, sequence: 0)
        } else if parts.count == 2, let seq = UInt64(parts[1]) {
            self.init(milliseconds: ms, sequence: seq)
        } else {
            return nil
        }
    }

    public static let zero = RedisStreamID(milliseconds: 0, sequence: 0)

    public var description: String { "\(milliseconds)-\(sequence)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}

extension RedisClient {
    /// Appends an entry and returns its id. With `maxLength`, the stream is trimmed (approximately, `~`)
    /// to about that many entries.
    @discardableResult
    public func xadd(
        _ stream: String, id: String = "*", fields: [(String, String)], maxLength: Int? = nil
    ) async throws(RedisError) -> String {
        var args: [RedisArgument] = [.string(stream)]
        if let maxLength {
            args += ["MAXLEN", "~", .int(maxLength)]
        }
        args.append(.string(id))
        for (field, value) in fields {
            args.append(.string(field))
            args.append(.string(value))
        }
        let reply = try await send(RedisCommand("XADD", arguments: args))
        guard let id = reply.string else { throw .unexpectedReply(command: "XADD", reply: "\(reply)") }
        return id
    }

    /// Entries between `start` and `end` inclusive (`-` and `+` for the ends), oldest first.
    public func xrange(
        _ stream: String, from start: String = "-", to end: String = "+", count: Int? = nil
    ) async throws(RedisError) -> [RedisStreamEntry] {
        var args: [RedisArgument] = [.string(stream), .string(start), .string(end)]
        if let count { args += ["COUNT", .int(count)] }
        let reply = try await send(RedisCommand("XRANGE", arguments: args))
        return try Self.entries(reply, command: "XRANGE")
    }

    /// Reads entries after `id` from one stream, waiting up to `block` for some to arrive.
    ///
    /// The wait holds a pooled connection, so long-blocking readers should size the pool for it.
    /// Returns an empty array when the wait ends with nothing new.
    public func xread(
        _ stream: String, after id: String, count: Int? = nil, block: Duration? = nil
    ) async throws(RedisError) -> [RedisStreamEntry] {
        var args: [RedisArgument] = []
        if let count { args += ["COUNT", .int(count)] }
        if let block { args += ["BLOCK", .int(Int(block.nanoseconds / 1_000_000))] }
        args += ["STREAMS", .string(stream), .string(id)]
        // A blocking read's reply may take as long as the block plus the usual command time.
        let timeout = (block ?? .zero) + configuration.commandTimeout
        let reply = try await send(RedisCommand("XREAD", arguments: args), timeout: timeout)
        if reply.isNull { return [] }
        guard let streams = reply.array else { throw .unexpectedReply(command: "XREAD", reply: "\(reply)") }
        var result: [RedisStreamEntry] = []
        for s in streams {
            guard let pair = s.array, pair.count == 2 else { throw .unexpectedReply(command: "XREAD", reply: "\(reply)") }
            result += try Self.entries(pair[1], command: "XREAD")
        }
        return result
    }

    /// Stream length and first entry id (`XINFO STREAM` subset) for trim detection.
    public func xfirstID(_ stream: String) async throws(RedisError) -> String? {
        try await xrange(stream, count: 1).first?.id
    }

    static func entries(_ reply: RedisValue, command: String) throws(RedisError) -> [RedisStreamEntry] {
        guard let items = reply.array else { throw .unexpectedReply(command: command, reply: "\(reply)") }
        var entries: [RedisStreamEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            guard let pair = item.array, pair.count == 2, let id = pair[0].string, let raw = pair[1].array else {
                throw .unexpectedReply(command: command, reply: "\(item)")
            }
            var fields: [(String, String)] = []
            fields.reserveCapacity(raw.count / 2)
            var i = 0
            while i + 1 < raw.count {
                fields.append((raw[i].string ?? "", raw[i + 1].string ?? ""))
                i += 2
            }
            entries.append(RedisStreamEntry(id: id, fields: fields))
        }
        return entries
    }
}

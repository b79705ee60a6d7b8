/// What `XINFO STREAM` says about a stream: enough for a reader to tell whether entries it never read
/// were trimmed or deleted.
///
/// Redis 7 reports ``maxDeletedEntryID`` (the greatest id ever removed by `XTRIM`, `MAXLEN` or `XDEL`):
/// a reader whose last id is below it has lost entries. Older servers leave it nil; readers then fall
/// back to comparing with ``firstEntryID``.
public struct RedisStreamInfo: Sendable, Hashable {
    /// Entries in the stream now.
    public var length: Int
    /// The id of the last entry ever added (it may have been trimmed since).
    public var lastGeneratedID: RedisStreamID
    /// The greatest id ever deleted or trimmed; nil before Redis 7.
    public var maxDeletedEntryID: RedisStreamID?
    /// Entries ever added; nil before Redis 7.
    public var entriesAdded: Int?
    /// The oldest entry still in the stream; nil when it is empty.
    public var firstEntryID: RedisStreamID?
    /// The newest entry still in the stream; nil when it is empty.
    public var lastEntryID: RedisStreamID?

    public init(
        length: Int, lastGeneratedID: RedisStreamID, maxDeletedEntryID: RedisStreamID? = nil, entriesAdded: Int? = nil,
        firstEntryID: RedisStreamID? = nil, lastEntryID: RedisStreamID? = nil
    ) {
        self.length = length
        self.lastGeneratedID = lastGeneratedID
        self.maxDeletedEntryID = maxDeletedEntryID
        self.entriesAdded = entriesAdded
        self.firstEntryID = firstEntryID
        self.lastEntryID = lastEntryID
    }

    /// Parses an `XINFO STREAM` reply (the RESP2 flat list of names and values).
    public init(reply: RedisValue) throws(RedisError) {
        guard let items = reply.array else { throw .unexpectedReply(command: "XINFO", reply: "\(reply)") }
        var values: [String: RedisValue] = [:]
        var i = 0
        while i + 1 < items.count {
            if let name = items[i].string { values[name] = items[i + 1] }
            i += 2
        }
        guard let length = values["length"]?.int, let last = values["last-generated-id"]?.string.flatMap(RedisStreamID.init)
        else { throw .unexpectedReply(command: "XINFO", reply: "\(reply)") }
        func entryID(_ value: RedisValue?) -> RedisStreamID? {
            value?.array?.first?.string.flatMap(RedisStreamID.init)
        }
        self.init(
            length: Int(length), lastGeneratedID: last,
            maxDeletedEntryID: values["max-deleted-entry-id"]?.string.flatMap(RedisStreamID.init),
            entriesAdded: values["entries-added"]?.int.map { Int($0) },
            firstEntryID: entryID(values["first-entry"]), lastEntryID: entryID(values["last-entry"]))
    }
}

extension RedisClient {
    /// `XINFO STREAM`; nil when the stream does not exist.
    public func xinfoStream(_ stream: String) async throws(RedisError) -> RedisStreamInfo? {
        do {
            return try RedisStreamInfo(reply: try await send("XINFO", "STREAM", .string(stream)))
        } catch let error where Self.isNoSuchKey(error) {
            return nil
        }
    }

    /// Whether an error reply says the key does not exist (as `XINFO` answers for a missing stream).
    public static func isNoSuchKey(_ error: RedisError) -> Bool {
        guard case .server(_, let message) = error else { return false }
        return message.lowercased().contains("no such key")
    }

    /// The entries of an `XRANGE` / `XREVRANGE` reply, for replies that come back from a pipeline or a
    /// transaction rather than from ``xrange(_:from:to:count:)``.
    public static func streamEntries(fromRange reply: RedisValue) throws(RedisError) -> [RedisStreamEntry] {
        try entries(reply, command: "XRANGE")
    }

    /// The entries of an `XREAD` reply (all streams, in reply order); empty for a nil reply.
    public static func streamEntries(fromRead reply: RedisValue) throws(RedisError) -> [RedisStreamEntry] {
        if reply.isNull { return [] }
        guard let streams = reply.array else { throw .unexpectedReply(command: "XREAD", reply: "\(reply)") }
        var result: [RedisStreamEntry] = []
        for s in streams {
            guard let pair = s.array, pair.count == 2 else { throw .unexpectedReply(command: "XREAD", reply: "\(reply)") }
            result += try entries(pair[1], command: "XREAD")
        }
        return result
    }
}

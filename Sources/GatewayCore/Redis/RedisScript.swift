import Crypto

/// A Lua script run by its SHA1 with `EVALSHA`, loaded with `SCRIPT LOAD` when Redis does not know it
/// yet (after a restart or `SCRIPT FLUSH`).
public struct RedisScript: Sendable, Hashable {
    public let source: String
    /// Lower-case hex SHA1 of the source, as Redis names scripts.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).hexString
    }
}

extension RedisClient {
    /// Runs the script with `EVALSHA`; on `NOSCRIPT` it loads the script and runs it again.
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [String], arguments: [RedisArgument] = []) async throws(RedisError) -> RedisValue {
        try await withSharedConnection(forKey: keys.first) { connection throws(RedisError) in
            try await connection.evalScript(script, keys: keys, arguments: arguments)
        }
    }
}

extension RedisConnection {
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [String], arguments: [RedisArgument] = []) async throws(RedisError) -> RedisValue {
        let args: [RedisArgument] = [.string(script.sha1), .int(keys.count)] + keys.map { .string($0) } + arguments
        do {
            return try await send(RedisCommand("EVALSHA", arguments: args))
        } catch let error where error.serverErrorCode == "NOSCRIPT" {
            try await send(RedisCommand("SCRIPT", "LOAD", .string(script.source)))
            return try await send(RedisCommand("EVALSHA", arguments: args))
        }
    }
}

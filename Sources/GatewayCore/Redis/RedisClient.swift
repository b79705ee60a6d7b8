import Logging
import NIOCore
import NIOPosix

/// The Redis client the services use: a pool of connections with typed helpers.
///
/// ```swift
/// let redis = RedisClient(configuration: .init(url: try RedisURL(parsing: "redis://127.0.0.1:6379")), logger: logger)
/// try await redis.set("greeting", to: "hello")
/// let value = try await redis.get("greeting")   // "hello"
/// ```
///
/// With ``RedisConfiguration/cluster`` set it speaks to a Redis Cluster: each command goes to the node
/// serving its key's hash slot, over that node's pool, and `MOVED`, `ASK`, `TRYAGAIN` and `CLUSTERDOWN`
/// replies are followed (``RedisClusterRouter``). Keys one script, transaction or multi-key command
/// touches together must share a hash tag, as every key this project writes that way does.
public final class RedisClient: Sendable {
    /// The server's pool; on a cluster, the first seed's (commands without a key go there).
    public let pool: RedisConnectionPool
    public let configuration: RedisConfiguration
    let cluster: RedisClusterRouter?

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        if configuration.cluster {
            let cluster = RedisClusterRouter(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
            self.cluster = cluster
            self.pool = cluster.seedPool
        } else {
            self.cluster = nil
            self.pool = RedisConnectionPool(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        }
    }

    /// Sends one command: on the event loop's shared connection, or on a leased one for a command that
    /// needs its own (``RedisCommand/needsOwnConnection``). An error reply throws
    /// ``RedisError/server(command:message:)``.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> RedisValue {
        guard let cluster else {
            return try await pool.withConnection(shared: !command.needsOwnConnection) { connection throws(RedisError) in
                try await connection.send(command, timeout: timeout)
            }
        }
        return try await cluster.run(slot: command.clusterSlot, shared: !command.needsOwnConnection) { connection throws(RedisError) in
            try await connection.send(command, timeout: timeout)
        }
    }

    /// Runs `body` on a connection to the server that holds `key` (any node for nil): the event loop's
    /// shared connection where there is one, else a leased one. On a cluster, a redirection the body
    /// throws (`MOVED`, `ASK`...) runs it again on the right node, so the body's commands must all be for
    /// `key`'s slot, or keyless.
    public func withSharedConnection<T: Sendable>(
        forKey key: String?, _ body: (RedisConnection) async throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        guard let cluster else { return try await pool.withSharedConnection(body) }
        return try await cluster.run(slot: key.map { RedisClusterSlot.of(key: $0) }, shared: true, body)
    }

    /// Sends one command built from its name and arguments.
    @discardableResult
    public func send(_ name: String, _ arguments: RedisArgument...) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(name, arguments: arguments))
    }

    /// Sends the commands in one write on one connection; replies come back in order, error replies in
    /// their place as ``RedisValue/error(_:)``. One write keeps them together on the connection, so a
    /// `MULTI` … `EXEC` pipeline may share it too; other commands that need their own connection lease one.
    ///
    /// On a cluster, a `MULTI` … `EXEC` pipeline goes to the node of its first key (its keys must share a
    /// slot); other commands are grouped by node, each group one write, and the replies put back in order.
    public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async throws(RedisError) -> [RedisValue] {
        let transaction = commands.first?.name == "MULTI" && commands.last?.name == "EXEC"
        let inner = transaction ? commands.dropFirst().dropLast() : commands[...]
        let shared = !inner.contains(where: \.needsOwnConnection)
        guard let cluster else {
            return try await pool.withConnection(shared: shared) { connection throws(RedisError) in
                try await connection.pipeline(commands, timeout: timeout)
            }
        }
        if transaction {
            return try await cluster.runTransaction(commands, slot: inner.lazy.compactMap(\.clusterSlot).first, shared: shared, timeout: timeout)
        }
        return try await cluster.pipeline(commands, shared: shared, timeout: timeout)
    }

    /// Runs the commands as one `MULTI`/`EXEC` transaction and returns `EXEC`'s replies.
    public func transaction(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisValue] {
        let replies = try await pipeline([RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")])
        guard let exec = replies.last else { return [] }
        if case .error(let message) = exec { throw .server(command: "EXEC", message: message) }
        guard let results = exec.array else { throw .unexpectedReply(command: "EXEC", reply: "\(exec)") }
        return results
    }

    public func shutdown() async {
        if let cluster { await cluster.shutdown() } else { await pool.shutdown() }
    }

    /// On a cluster, the masters known and the redirections followed so far; nil for one server.
    public var clusterStatistics: RedisClusterStatistics? { cluster?.statistics }

    /// The connections of every pool the client has (one per cluster node), added up.
    public var poolStatistics: RedisPoolStatistics {
        var total = RedisPoolStatistics()
        for pool in cluster?.allPools ?? [pool] {
            let stats = pool.stats
            total.idle += stats.idle
            total.leased += stats.leased
            total.connecting += stats.connecting
            total.waiting += stats.waiting
            total.shared += pool.sharedCount
        }
        return total
    }
}

// MARK: - Typed helpers

extension RedisClient {
    public func ping() async throws(RedisError) {
        try await send("PING")
    }

    public func get(_ key: String) async throws(RedisError) -> String? {
        try await send("GET", .string(key)).string
    }

    /// Sets `key`; with `expiry`, it expires after that time (millisecond precision).
    public func set(_ key: String, to value: String, expiry: Duration? = nil) async throws(RedisError) {
        if let expiry {
            try await send("SET", .string(key), .string(value), "PX", .int(Int(expiry.nanoseconds / 1_000_000)))
        } else {
            try await send("SET", .string(key), .string(value))
        }
    }

    @discardableResult
    public func delete(_ keys: String...) async throws(RedisError) -> Int {
        Int(try await send(RedisCommand("DEL", arguments: keys.map { .string($0) })).int ?? 0)
    }

    public func hset(_ key: String, fields: [(String, String)]) async throws(RedisError) {
        var args: [RedisArgument] = [.string(key)]
        for (field, value) in fields {
            args.append(.string(field))
            args.append(.string(value))
        }
        try await send(RedisCommand("HSET", arguments: args))
    }

    public func hgetall(_ key: String) async throws(RedisError) -> [String: String] {
        let reply = try await send("HGETALL", .string(key))
        guard let items = reply.array else { throw .unexpectedReply(command: "HGETALL", reply: "\(reply)") }
        return Self.pairs(items)
    }

    public func publish(_ channel: String, _ message: String) async throws(RedisError) {
        try await send("PUBLISH", .string(channel), .string(message))
    }

    static func pairs(_ items: [RedisValue]) -> [String: String] {
        var result: [String: String] = [:]
        result.reserveCapacity(items.count / 2)
        var i = 0
        while i + 1 < items.count {
            if let k = items[i].string, let v = items[i + 1].string { result[k] = v }
            i += 2
        }
        return result
    }
}

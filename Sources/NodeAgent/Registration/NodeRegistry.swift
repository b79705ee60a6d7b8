import GatewayCore

/// The agent's Redis writes for its node: the heartbeat that writes the record and renews its lease,
/// deregistration, and events.
///
/// Only the heartbeat sets the record's expiry, so a node whose agent dies disappears one lease later
/// without anyone deleting it.
struct NodeRegistry: Sendable {
    let redis: RedisClient
    let keys: ClusterKeys

    /// Writes the whole record and renews its lease in one step; returns whether it existed before.
    ///
    /// KEYS[1] the record; ARGV[1] the lease in milliseconds; ARGV[2...] field, value pairs.
    static let heartbeatScript = RedisScript(
        """
        local existed = redis.call('EXISTS', KEYS[1])
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return existed
        """)

    /// Writes `record` under a lease of `lease` and makes sure the node index lists it.
    ///
    /// - Returns: whether the record existed before this write (false means the node was just
    ///   registered, or re-registered after its record was lost).
    func heartbeat(_ record: NodeRecord, lease: Duration) async throws(RedisError) -> Bool {
        var arguments: [RedisArgument] = [.int(Int(lease.nanoseconds / 1_000_000))]
        for (field, value) in record.fields {
            arguments.append(.string(field))
            arguments.append(.string(value))
        }
        let key = keys.node(record.id)
        let nodes = keys.nodes
        let existed = try await redis.evalScript(Self.heartbeatScript, keys: [key], arguments: arguments)
        // The index is a separate key (another slot on Redis Cluster): its own command.
        try await redis.send(RedisCommand("SADD", .string(nodes), .string(record.id)))
        return existed.int == 1
    }

    /// Removes the record and the index entry.
    func deregister(_ id: String) async throws(RedisError) {
        try await redis.send("DEL", .string(keys.node(id)))
        try await redis.send("SREM", .string(keys.nodes), .string(id))
    }

    func publish(_ event: ClusterEvent) async throws(RedisError) {
        try await redis.publish(keys.events, event.json)
    }
}

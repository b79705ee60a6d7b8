import GatewayCore

/// Writes node records the way a node-agent does, for registry tests.
struct FakeAgent {
    let redis: RedisClient
    var keys = ClusterKeys()

    /// Registers (or re-registers) a node: its record hash, the index, and a node_up event.
    func register(
        _ id: String, port: Int, region: String = "", weight: Int = 100, state: NodeState = .up,
        lease: Duration? = nil
    ) async throws {
        let record = NodeRecord(id: id, region: region, zone: "", address: "127.0.0.1", port: port, weight: weight, state: state)
        try await redis.hset(keys.node(id), fields: record.fields)
        if let lease {
            try await redis.send(
                "PEXPIRE", .string(keys.node(id)), .int(Int(lease.components.seconds * 1000 + lease.components.attoseconds / 1_000_000_000_000_000)))
        }
        try await redis.send("SADD", .string(keys.nodes), .string(id))
        try await redis.publish(keys.events, ClusterEvent.nodeChanged(node: id).json)
    }

    /// Changes the state field only, and announces it.
    func setState(_ id: String, _ state: NodeState) async throws {
        try await redis.hset(keys.node(id), fields: [(NodeRecord.Field.state.rawValue, state.rawValue)])
        try await redis.publish(keys.events, ClusterEvent.nodeChanged(node: id).json)
    }
}

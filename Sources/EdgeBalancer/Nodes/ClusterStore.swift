import GatewayCore

/// The balancer's reads and writes of cluster state in Redis: node records, weight overrides, drains and
/// the runtime policy, and the events that announce changes to them.
struct ClusterStore: Sendable {
    /// One full read of the registry.
    struct Snapshot: Sendable, Equatable {
        var records: [NodeRecord] = []
        /// Ids in the node index whose record is gone (its lease expired).
        var expired: [String] = []
        var weightOverrides: [String: Int] = [:]
        var drains: Set<String> = []
        var policy: PolicyKind?
    }

    let redis: RedisClient
    let keys: ClusterKeys

    /// `<prefix>:policy`: the policy an operator switched to at runtime.
    var policyKey: String { "\(keys.prefix):policy" }

    /// Reads the node index, every node record, the weight overrides, the drains and the policy.
    func read() async throws(RedisError) -> Snapshot {
        let replies = try await redis.pipeline([
            RedisCommand("SMEMBERS", .string(keys.nodes)),
            RedisCommand("HGETALL", .string(keys.weights)),
            RedisCommand("HGETALL", .string(keys.drains)),
            RedisCommand("GET", .string(policyKey)),
        ])
        guard replies.count == 4 else { throw .unexpectedReply(command: "pipeline", reply: "\(replies.count) replies") }
        let members = try replies[0].throwingServerError(command: "SMEMBERS")
        let weights = try replies[1].throwingServerError(command: "HGETALL")
        let drains = try replies[2].throwingServerError(command: "HGETALL")
        let policy = try replies[3].throwingServerError(command: "GET")

        var snapshot = Snapshot()
        for (node, text) in Self.pairs(weights) {
            if let weight = Int(text), (0...10_000).contains(weight) { snapshot.weightOverrides[node] = weight }
        }
        snapshot.drains = Set(Self.pairs(drains).keys)
        snapshot.policy = policy.string.flatMap(PolicyKind.init(rawValue:))

        let ids = (members.array ?? []).compactMap(\.string).sorted()
        guard !ids.isEmpty else { return snapshot }
        let records = try await redis.pipeline(ids.map { RedisCommand("HGETALL", .string(keys.node($0))) })
        for (id, reply) in zip(ids, records) {
            let fields = Self.pairs(try reply.throwingServerError(command: "HGETALL"))
            if fields.isEmpty {
                snapshot.expired.append(id)
            } else if var record = NodeRecord(fields: fields) {
                record.id = id
                snapshot.records.append(record)
            }
        }
        return snapshot
    }

    /// Sets an operator weight override and announces it.
    func setWeight(_ weight: Int, node: String) async throws(RedisError) {
        try await writeAndAnnounce(
            RedisCommand("HSET", .string(keys.weights), .string(node), .int(weight)), event: .weightChanged(node: node))
    }

    /// Removes an operator weight override and announces it.
    func clearWeight(node: String) async throws(RedisError) {
        try await writeAndAnnounce(
            RedisCommand("HDEL", .string(keys.weights), .string(node)), event: .weightChanged(node: node))
    }

    /// Drains or undrains a node and announces it.
    func setDrained(_ drained: Bool, node: String) async throws(RedisError) {
        let command =
            drained
            ? RedisCommand("HSET", .string(keys.drains), .string(node), "draining")
            : RedisCommand("HDEL", .string(keys.drains), .string(node))
        try await writeAndAnnounce(command, event: .drainChanged(node: node))
    }

    /// Stores the runtime policy and announces it.
    func setPolicy(_ policy: PolicyKind) async throws(RedisError) {
        try await writeAndAnnounce(RedisCommand("SET", .string(policyKey), .string(policy.rawValue)), event: .policyChanged)
    }

    /// Removes ids whose record expired from the node index.
    func prune(_ ids: [String]) async throws(RedisError) {
        guard !ids.isEmpty else { return }
        try await redis.send(RedisCommand("SREM", arguments: [.string(keys.nodes)] + ids.map { .string($0) }))
    }

    /// Writes, then publishes the event, in one round trip on one connection (so the write lands first).
    private func writeAndAnnounce(_ command: RedisCommand, event: ClusterEvent) async throws(RedisError) {
        let replies = try await redis.pipeline([command, RedisCommand("PUBLISH", .string(keys.events), .string(event.json))])
        for (reply, name) in zip(replies, [command.name, "PUBLISH"]) {
            try reply.throwingServerError(command: name)
        }
    }

    static func pairs(_ reply: RedisValue) -> [String: String] {
        guard let items = reply.array else { return [:] }
        var result: [String: String] = [:]
        var i = 0
        while i + 1 < items.count {
            if let key = items[i].string, let value = items[i + 1].string { result[key] = value }
            i += 2
        }
        return result
    }
}

import GatewayCore

/// Publishes cluster-wide cache invalidations and waits until every live node has applied one (what
/// `gatewayctl cache purge ... --wait` does).
///
/// ```swift
/// let publisher = InvalidationPublisher(redis: redis, keys: ClusterKeys())
/// let id = try await publisher.publish(.prefix("/orders", api: "orders"))
/// let progress = try await publisher.waitForApplied(id: id, timeout: .seconds(10))
/// if !progress.isComplete { print("not yet applied on:", progress.laggards.map(\.node)) }
/// ```
public struct InvalidationPublisher: Sendable {
    public let redis: RedisClient
    public let keys: ClusterKeys
    /// The stream is trimmed to about this many entries (`MAXLEN ~`) with every publish.
    public var maxLength: Int

    public init(redis: RedisClient, keys: ClusterKeys, maxLength: Int = 10_000) {
        self.redis = redis
        self.keys = keys
        self.maxLength = maxLength
    }

    /// Adds an invalidation to the stream and returns its id.
    @discardableResult
    public func publish(_ scope: InvalidationScope) async throws(RedisError) -> String {
        try await redis.xadd(keys.invalidations, fields: scope.streamFields, maxLength: maxLength)
    }

    /// How far the live nodes got with one invalidation.
    public struct Progress: Sendable, Hashable {
        /// The invalidation waited for.
        public var target: RedisStreamID
        /// Live nodes whose last applied id has reached the target, sorted.
        public var applied: [String]
        /// Live nodes that have not, sorted by id.
        public var laggards: [Laggard]

        /// Every live node applied it (also true when no node is live).
        public var isComplete: Bool { laggards.isEmpty }
    }

    /// A live node that has not applied the invalidation yet.
    public struct Laggard: Sendable, Hashable {
        public var node: String
        /// The last invalidation it did apply.
        public var lastApplied: String
        public var state: NodeState
        public var health: NodeHealth
        public var healthReason: String
    }

    /// Polls the live node records (those in the node index whose record has not expired) until every
    /// one's `last_invalidation` is at least `id`, or `timeout` passes.
    ///
    /// - Returns: the progress at the end: complete, or with the nodes that lag.
    public func waitForApplied(
        id: String, timeout: Duration, pollInterval: Duration = .milliseconds(50)
    ) async throws -> Progress {
        guard let target = RedisStreamID(id) else { throw RedisError.unexpectedReply(command: "XADD", reply: id) }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            let progress = try await self.progress(of: target)
            if progress.isComplete || clock.now >= deadline { return progress }
            try await Task.sleep(for: min(pollInterval, deadline - clock.now))
        }
    }

    /// One look at how far the live nodes got.
    public func progress(of target: RedisStreamID) async throws(RedisError) -> Progress {
        let members = try await redis.send("SMEMBERS", .string(keys.nodes)).array?.compactMap(\.string) ?? []
        let ids = members.sorted()
        let replies = ids.isEmpty ? [] : try await redis.pipeline(ids.map { RedisCommand("HGETALL", .string(keys.node($0))) })
        var progress = Progress(target: target, applied: [], laggards: [])
        for (id, reply) in zip(ids, replies) {
            guard let items = try reply.throwingServerError(command: "HGETALL").array, !items.isEmpty else { continue }
            var fields: [String: String] = [:]
            var i = 0
            while i + 1 < items.count {
                if let k = items[i].string, let v = items[i + 1].string { fields[k] = v }
                i += 2
            }
            guard let record = NodeRecord(fields: fields) else { continue }
            if let last = RedisStreamID(record.lastInvalidation), last >= target {
                progress.applied.append(id)
            } else {
                progress.laggards.append(
                    Laggard(
                        node: id, lastApplied: record.lastInvalidation, state: record.state, health: record.health,
                        healthReason: record.healthReason))
            }
        }
        return progress
    }
}

/// The names of everything the cluster keeps in Redis, under one prefix (default `gc`).
///
/// Keys one script or transaction touches together share a hash tag (`{…}`), so the same code runs on
/// Redis Cluster; per-client keys (rate-limit state, API keys) spread across slots.
public struct ClusterKeys: Sendable, Hashable {
    public let prefix: String

    public init(prefix: String = "gc") {
        self.prefix = prefix
    }

    /// Hash: one node's record (see ``NodeRecord``); expires unless its agent's heartbeat renews it.
    public func node(_ id: String) -> String { "\(prefix):node:\(id)" }
    /// Set: ids of registered nodes (readers prune ids whose record expired).
    public var nodes: String { "\(prefix):nodes" }
    /// Hash: node id → operator weight override.
    public var weights: String { "\(prefix):weights" }
    /// Hash: node id → `draining` for nodes an operator drained at a balancer.
    public var drains: String { "\(prefix):drains" }
    /// Hash: API id → definition JSON.
    public var apis: String { "\(prefix):{apis}:defs" }
    /// Counter bumped with every definition change (same hash tag as ``apis``).
    public var apisVersion: String { "\(prefix):{apis}:version" }
    /// API key record, by SHA-256 hex of the key.
    public func apiKey(hash: String) -> String { "\(prefix):key:\(hash)" }
    /// Stream of cache invalidations.
    public var invalidations: String { "\(prefix):invalidations" }
    /// Pub/sub channel for cluster events (``ClusterEvent``).
    public var events: String { "\(prefix):events" }
    /// Rate-limit state for one (API, client).
    public func rateLimit(api: String, client: String) -> String { "\(prefix):rl:{\(api):\(client)}" }
}

/// A node's lifecycle state, as its agent (or an operator) sets it.
public enum NodeState: String, Sendable, Codable, CaseIterable {
    /// Serving; balancers may send new requests.
    case up
    /// Finishing in-flight requests; balancers send no new ones.
    case draining
    /// Not serving (the engine failed its probe, or is stopping).
    case down
}

/// What the agent's probe of its engine found.
public enum NodeHealth: String, Sendable, Codable, CaseIterable {
    case up
    /// Serving, but impaired (for example it cannot reach Redis).
    case degraded
    case down
}

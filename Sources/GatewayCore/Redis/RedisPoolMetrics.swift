import Metrics

/// Gauges of a Redis client's connections for `/metrics`, recorded by the service's periodic loop:
/// `<prefix>_redis_connections{state="idle|leased|connecting|shared"}` and `<prefix>_redis_waiters`
/// (callers queued for a leased connection).
public struct RedisPoolMetrics: Sendable {
    private let idle: Gauge
    private let leased: Gauge
    private let connecting: Gauge
    private let shared: Gauge
    private let waiters: Gauge

    /// - Parameter prefix: the service's metric prefix (`gc_engine`, `balancer`, `node_agent`).
    public init(prefix: String) {
        let name = prefix + "_redis_connections"
        idle = Gauge(label: name, dimensions: [("state", "idle")])
        leased = Gauge(label: name, dimensions: [("state", "leased")])
        connecting = Gauge(label: name, dimensions: [("state", "connecting")])
        shared = Gauge(label: name, dimensions: [("state", "shared")])
        waiters = Gauge(label: prefix + "_redis_waiters")
    }

    public func record(_ redis: RedisClient) {
        let stats = redis.poolStatistics
        idle.record(stats.idle)
        leased.record(stats.leased)
        connecting.record(stats.connecting)
        shared.record(stats.shared)
        waiters.record(stats.waiting)
    }
}

/// A client's connections by state, over all its pools.
public struct RedisPoolStatistics: Sendable, Hashable {
    public var idle = 0
    public var leased = 0
    public var connecting = 0
    public var waiting = 0
    /// Event loops' shared connections.
    public var shared = 0
}

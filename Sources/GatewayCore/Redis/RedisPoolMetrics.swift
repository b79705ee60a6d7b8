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

    public func record(_ pool: RedisConnectionPool) {
        let stats = pool.stats
        idle.record(stats.idle)
        leased.record(stats.leased)
        connecting.record(stats.connecting)
        shared.record(pool.sharedCount)
        waiters.record(stats.waiting)
    }
}

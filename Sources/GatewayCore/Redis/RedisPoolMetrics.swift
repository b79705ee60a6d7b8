import Metrics
import Synchronization

/// Gauges of a Redis client's connections for `/metrics`, recorded by the service's periodic loop:
/// `<prefix>_redis_connections{state="idle|leased|connecting|shared"}` and `<prefix>_redis_waiters`
/// (callers queued for a leased connection). On a Redis Cluster also `<prefix>_redis_cluster_masters`,
/// `<prefix>_redis_cluster_node_pools` (nodes the client keeps a pool for),
/// `<prefix>_redis_cluster_redirects_total{kind="moved|ask|retry"}` and
/// `<prefix>_redis_cluster_layout_reads_total{result="ok|failed"}`.
public final class RedisPoolMetrics: Sendable {
    private let idle: Gauge
    private let leased: Gauge
    private let connecting: Gauge
    private let shared: Gauge
    private let waiters: Gauge
    private let masters: Gauge
    private let nodePools: Gauge
    private let moved: Counter
    private let asked: Counter
    private let retried: Counter
    private let layoutReads: Counter
    private let layoutFailures: Counter
    /// The cluster totals last recorded: the counters go up by the difference.
    private let recorded = Mutex(
        RedisClusterStatistics(masters: 0, moved: 0, asked: 0, retried: 0, layoutReads: 0, layoutFailures: 0, pools: 0, poolsClosed: 0))

    /// - Parameter prefix: the service's metric prefix (`gc_engine`, `balancer`, `node_agent`).
    public init(prefix: String) {
        let name = prefix + "_redis_connections"
        idle = Gauge(label: name, dimensions: [("state", "idle")])
        leased = Gauge(label: name, dimensions: [("state", "leased")])
        connecting = Gauge(label: name, dimensions: [("state", "connecting")])
        shared = Gauge(label: name, dimensions: [("state", "shared")])
        waiters = Gauge(label: prefix + "_redis_waiters")
        masters = Gauge(label: prefix + "_redis_cluster_masters")
        nodePools = Gauge(label: prefix + "_redis_cluster_node_pools")
        let redirects = prefix + "_redis_cluster_redirects_total"
        moved = Counter(label: redirects, dimensions: [("kind", "moved")])
        asked = Counter(label: redirects, dimensions: [("kind", "ask")])
        retried = Counter(label: redirects, dimensions: [("kind", "retry")])
        let reads = prefix + "_redis_cluster_layout_reads_total"
        layoutReads = Counter(label: reads, dimensions: [("result", "ok")])
        layoutFailures = Counter(label: reads, dimensions: [("result", "failed")])
    }

    public func record(_ redis: RedisClient) {
        let stats = redis.poolStatistics
        idle.record(stats.idle)
        leased.record(stats.leased)
        connecting.record(stats.connecting)
        shared.record(stats.shared)
        waiters.record(stats.waiting)
        guard let cluster = redis.clusterStatistics else { return }
        masters.record(cluster.masters)
        nodePools.record(cluster.pools)
        let last = recorded.withLock { last in
            defer { last = cluster }
            return last
        }
        moved.increment(by: max(0, cluster.moved - last.moved))
        asked.increment(by: max(0, cluster.asked - last.asked))
        retried.increment(by: max(0, cluster.retried - last.retried))
        layoutReads.increment(by: max(0, cluster.layoutReads - last.layoutReads))
        layoutFailures.increment(by: max(0, cluster.layoutFailures - last.layoutFailures))
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

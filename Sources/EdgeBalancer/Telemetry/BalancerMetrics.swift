import CoreMetrics
import GatewayCore
import Metrics
import NIOCore
import NIOHTTP1

/// Every metric the balancer reports, created once and kept: per-node metrics live in
/// ``NodeMetrics`` (made when a node is first seen), the rest here.
///
/// No request id is ever a dimension; node ids are (their number is bounded by the cluster size).
final class BalancerMetrics: Sendable {
    /// Client-facing requests by status class (`2xx`, …, `5xx`).
    let requestsByClass: [Metrics.Counter]
    /// Client-facing duration, from the request head to the end of the response.
    let requestDuration: Metrics.Timer
    /// Retries sent to another node.
    let retries: Metrics.Counter
    /// Retries refused because the budget was spent.
    let retriesRefusedByBudget: Metrics.Counter
    /// Requests answered 503 because no node was usable.
    let noUsableNode: Metrics.Counter
    /// 1 while in panic mode.
    let panic: Gauge
    /// Usable and registered (eligible) node counts.
    let usableNodes: Gauge
    let eligibleNodes: Gauge
    /// Routing table rebuilds.
    let tableRebuilds: Metrics.Counter
    /// Full reads of the registry from Redis, and failed ones.
    let registrySyncs: Metrics.Counter
    let registrySyncFailures: Metrics.Counter
    /// 1 while the registry can read Redis.
    let registryReachable: Gauge
    /// Open client connections.
    let activeConnections: Gauge
    /// Open HTTP/2 streams on client connections.
    let activeStreams: Gauge
    /// Client connections switched to another protocol (WebSocket) by their node.
    let activeTunnels: Gauge
    let redisPool = RedisPoolMetrics(prefix: "balancer")

    init() {
        requestsByClass = StatusClass.allCases.map {
            Metrics.Counter(label: "balancer_requests_total", dimensions: [("status_class", $0.rawValue)])
        }
        requestDuration = Metrics.Timer(label: "balancer_request_duration_seconds")
        retries = Metrics.Counter(label: "balancer_retries_total", dimensions: [("result", "sent")])
        retriesRefusedByBudget = Metrics.Counter(label: "balancer_retries_total", dimensions: [("result", "budget_exhausted")])
        noUsableNode = Metrics.Counter(label: "balancer_no_usable_node_total")
        panic = Gauge(label: "balancer_panic_mode")
        usableNodes = Gauge(label: "balancer_nodes", dimensions: [("kind", "usable")])
        eligibleNodes = Gauge(label: "balancer_nodes", dimensions: [("kind", "eligible")])
        tableRebuilds = Metrics.Counter(label: "balancer_routing_table_rebuilds_total")
        registrySyncs = Metrics.Counter(label: "balancer_registry_syncs_total", dimensions: [("result", "ok")])
        registrySyncFailures = Metrics.Counter(label: "balancer_registry_syncs_total", dimensions: [("result", "failed")])
        registryReachable = Gauge(label: "balancer_registry_reachable")
        activeConnections = Gauge(label: "balancer_active_connections")
        activeStreams = Gauge(label: "balancer_active_streams")
        activeTunnels = Gauge(label: "balancer_active_tunnels")
    }

    func request(status: HTTPResponseStatus, duration: TimeAmount) {
        requestsByClass[StatusClass(status).index].increment()
        requestDuration.recordNanoseconds(duration.nanoseconds)
    }
}

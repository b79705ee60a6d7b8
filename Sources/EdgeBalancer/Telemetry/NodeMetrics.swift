import CoreMetrics
import Metrics

/// The metrics of one node, created once when the node is first seen.
final class NodeMetrics: Sendable {
    /// Upstream exchanges by status class, plus `failed` (no response).
    let exchanges: [Metrics.Counter]
    let failed: Metrics.Counter
    /// Time to the first response byte.
    let responseTime: Metrics.Timer
    let ejections: Metrics.Counter
    let becameHealthy: Metrics.Counter
    let becameUnhealthy: Metrics.Counter
    let effectiveWeight: Gauge
    let ewmaSeconds: Gauge
    let inFlight: Gauge
    let usable: Gauge
    /// Requests that waited the whole connect timeout for a connection to the node (at its limit).
    let poolTimeouts: Metrics.Counter

    init(node: String) {
        let dims = [("node", node)]
        exchanges = StatusClass.allCases.map {
            Metrics.Counter(label: "balancer_upstream_requests_total", dimensions: dims + [("status_class", $0.rawValue)])
        }
        failed = Metrics.Counter(label: "balancer_upstream_requests_total", dimensions: dims + [("status_class", "failed")])
        responseTime = Metrics.Timer(label: "balancer_upstream_response_seconds", dimensions: dims)
        ejections = Metrics.Counter(label: "balancer_ejections_total", dimensions: dims)
        becameHealthy = Metrics.Counter(label: "balancer_health_transitions_total", dimensions: dims + [("to", "healthy")])
        becameUnhealthy = Metrics.Counter(label: "balancer_health_transitions_total", dimensions: dims + [("to", "unhealthy")])
        effectiveWeight = Gauge(label: "balancer_node_effective_weight", dimensions: dims)
        ewmaSeconds = Gauge(label: "balancer_node_ewma_seconds", dimensions: dims)
        inFlight = Gauge(label: "balancer_node_in_flight", dimensions: dims)
        usable = Gauge(label: "balancer_node_usable", dimensions: dims)
        poolTimeouts = Metrics.Counter(label: "balancer_upstream_pool_timeouts_total", dimensions: dims)
    }
}

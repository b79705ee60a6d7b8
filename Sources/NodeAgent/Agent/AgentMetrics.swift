import GatewayCore
import Metrics

/// The agent's metrics, created once.
struct AgentMetrics: Sendable {
    let heartbeatAge = Gauge(label: "node_agent_heartbeat_age_seconds")
    let heartbeatFailures = Metrics.Counter(label: "node_agent_heartbeat_failures_total")
    let redisUp = Gauge(label: "node_agent_redis_up")
    let redisPool = RedisPoolMetrics(prefix: "node_agent")
    let engineHealth: [NodeHealth: Gauge] = Dictionary(
        uniqueKeysWithValues: NodeHealth.allCases.map { ($0, Gauge(label: "node_agent_engine_health", dimensions: [("health", $0.rawValue)])) })
    let probeCounters: [NodeHealth: Metrics.Counter] = Dictionary(
        uniqueKeysWithValues: NodeHealth.allCases.map {
            ($0, Metrics.Counter(label: "node_agent_probes_total", dimensions: [("result", $0.rawValue)]))
        })
    let draining = Gauge(label: "node_agent_draining")
    let invalidationLag = Gauge(label: "node_agent_invalidation_lag_seconds")
    let invalidationsPending = Gauge(label: "node_agent_invalidations_pending")
    let invalidationsApplied = Metrics.Counter(label: "node_agent_invalidations_applied_total")
    let fullPurges = Metrics.Counter(label: "node_agent_invalidation_full_purges_total")
    let purgeFailures = Metrics.Counter(label: "node_agent_purge_failures_total")

    func probes(_ health: NodeHealth) -> Metrics.Counter { probeCounters[health]! }

    func record(_ status: AgentStatus) {
        heartbeatAge.record(status.heartbeatAge()?.seconds ?? -1)
        redisUp.record(status.redisReachable ? 1 : 0)
        for (health, gauge) in engineHealth { gauge.record(health == status.engineHealth ? 1 : 0) }
        draining.record(status.state == .draining ? 1 : 0)
        invalidationLag.record(status.invalidationLag().seconds)
        invalidationsPending.record(status.pendingInvalidations)
    }
}

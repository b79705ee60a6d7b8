import Foundation
import GatewayCore

extension NodeAgent {
    /// Adds the agent's admin routes: `/health` (its view of itself: heartbeat age, Redis state, the
    /// engine probe, invalidation progress and lag), `/ready` (ready once its node is registered) and
    /// `/metrics`.
    public func addRoutes(to router: inout AdminRouter) {
        let status = self.status
        StandardRoutes.add(
            to: &router, service: "node-agent",
            health: { Self.healthFields(status.current) },
            readiness: { Self.notReadyReason(status.current) })
    }

    static func healthFields(_ s: AgentStatus, now: ContinuousClock.Instant = .now) -> [String: String] {
        var fields: [String: String] = [
            "status": s.redisReachable && s.engineHealth == .up ? "ok" : "degraded",
            "node": s.node, "region": s.region, "zone": s.zone,
            "state": s.state.rawValue,
            "engine_health": s.engineHealth.rawValue,
            "redis": s.redisReachable ? "up" : "down",
            "last_invalidation": s.lastInvalidation.description,
            "invalidations_pending": String(s.pendingInvalidations),
            "invalidation_lag_ms": String(s.invalidationLag().nanoseconds / 1_000_000),
            "invalidations_applied": String(s.invalidationsApplied),
            "full_purges": String(s.fullPurges),
        ]
        if !s.engineReason.isEmpty { fields["engine_reason"] = s.engineReason }
        if let age = s.heartbeatAge(now: now) { fields["heartbeat_age_ms"] = String(age.nanoseconds / 1_000_000) }
        if let error = s.heartbeatError { fields["redis_error"] = error }
        if let error = s.invalidationError { fields["invalidation_error"] = error }
        return fields
    }

    static func notReadyReason(_ s: AgentStatus) -> String? {
        if s.lastHeartbeat == nil { return "node not registered yet" + (s.heartbeatError.map { " (\($0))" } ?? "") }
        if !s.redisReachable { return "redis unreachable" + (s.heartbeatError.map { " (\($0))" } ?? "") }
        return nil
    }
}

import GatewayCore

/// One probe of the engine, judged: its health for the node record, the reason when not `up`, and its
/// load.
struct ProbeResult: Sendable, Equatable {
    var health: NodeHealth
    var reason: String
    var load: EngineLoad
    var engineVersion: String?
    var definitionsVersion: String?

    /// Judges a readiness answer and a health report.
    ///
    /// - `/ready` unanswered: `down` (the engine stopped answering).
    /// - `/ready` 503: `down`, with the engine's reason.
    /// - ready, but `/health` says Redis is down or its status is `degraded`: `degraded`.
    /// - ready otherwise: `up`.
    static func assess(readiness: EngineClient.Readiness, report: EngineHealthReport?, load: EngineLoad) -> ProbeResult {
        let health: NodeHealth
        let reason: String
        switch readiness {
        case .unreachable(let error):
            health = .down
            reason = "engine not answering: \(error)"
        case .notReady(let why):
            health = .down
            reason = "engine not ready: \(why)"
        case .ready:
            if report?.redis?.lowercased() == "down" {
                health = .degraded
                reason = "engine cannot reach redis"
            } else if let status = report?.status?.lowercased(), status == "degraded" {
                health = .degraded
                reason = "engine reports degraded"
            } else {
                health = .up
                reason = ""
            }
        }
        return ProbeResult(
            health: health, reason: reason, load: load, engineVersion: report?.version,
            definitionsVersion: report?.definitionsVersion)
    }
}

import GatewayCore

/// The load figures the node record carries.
struct EngineLoad: Sendable, Equatable {
    var inFlight = 0
    var requestsPerSecond = 0.0
    var p50Milliseconds = 0.0
    var p99Milliseconds = 0.0
    /// Errors per request over the last interval, 0...1.
    var errorRate = 0.0
    var cpuPercent = 0.0
    var memoryBytes = 0

    static let zero = EngineLoad()
}

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

/// Turns the engine's cumulative counters into rates: requests per second and error rate over the time
/// between two health reports.
///
/// A counter that goes backwards means the engine restarted: that interval reports no rate and the new
/// value becomes the baseline.
struct LoadTracker: Sendable {
    private var previous: (at: ContinuousClock.Instant, requests: Double, errors: Double)?

    /// The load in `report`, taken at `now`; zero load when there is no report (the baseline is kept, so
    /// one missed report only widens the next interval).
    mutating func load(from report: EngineHealthReport?, at now: ContinuousClock.Instant) -> EngineLoad {
        guard let report else { return .zero }
        var load = EngineLoad(
            inFlight: max(report.inFlight ?? 0, 0), p50Milliseconds: report.p50Milliseconds ?? 0,
            p99Milliseconds: report.p99Milliseconds ?? 0, cpuPercent: report.cpuPercent ?? 0,
            memoryBytes: report.memoryBytes ?? 0)
        guard let requests = report.requestsTotal else {
            previous = nil
            return load
        }
        let errors = report.errorsTotal ?? 0
        if let previous, requests >= previous.requests, errors >= previous.errors {
            let elapsed = (now - previous.at).seconds
            let deltaRequests = requests - previous.requests
            if elapsed > 0 { load.requestsPerSecond = deltaRequests / elapsed }
            if deltaRequests > 0 { load.errorRate = min(max((errors - previous.errors) / deltaRequests, 0), 1) }
        }
        previous = (now, requests, errors)
        return load
    }
}

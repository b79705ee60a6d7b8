import GatewayCore

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

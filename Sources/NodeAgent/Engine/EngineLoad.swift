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

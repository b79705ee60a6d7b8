/// The result of one active health check of one node.
struct ProbeResult: Sendable, Equatable {
    var node: String
    var passed: Bool
    /// The round trip, when the node answered.
    var latency: Duration?
    /// Why it failed (status, timeout, refused), for logs.
    var detail: String
}

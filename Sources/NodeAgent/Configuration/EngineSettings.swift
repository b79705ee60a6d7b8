/// How the agent reaches its engine's admin API.
public struct EngineSettings: Sendable, Hashable {
    /// `http://host:port` of the engine's admin listener, without a trailing slash.
    public var adminURL: String
    /// Bearer token for the engine's admin routes (defaults to the agent's own `admin.token`).
    public var token: String
    /// How long a readiness or health probe may take.
    public var probeTimeout: Duration
    /// How long a cache purge call may take.
    public var requestTimeout: Duration

    public init(adminURL: String, token: String, probeTimeout: Duration = .milliseconds(500), requestTimeout: Duration = .seconds(5)) {
        self.adminURL = adminURL
        self.token = token
        self.probeTimeout = probeTimeout
        self.requestTimeout = requestTimeout
    }
}

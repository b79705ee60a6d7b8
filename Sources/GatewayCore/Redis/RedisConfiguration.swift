/// How the client reaches Redis and how long it waits.
public struct RedisConfiguration: Sendable, Hashable {
    public var url: RedisURL
    /// How long a TCP connect plus AUTH/SELECT may take.
    public var connectTimeout: Duration = .seconds(2)
    /// How long a reply may take before the command fails and its connection is closed.
    public var commandTimeout: Duration = .seconds(2)
    /// Most connections the pool opens.
    public var poolSize: Int = 16
    /// How long a caller waits for a free pooled connection before ``RedisError/poolTimeout(after:)``.
    public var leaseTimeout: Duration = .seconds(2)
    /// A pooled connection left idle this long is closed; the pool keeps one idle connection regardless.
    public var idleTimeout: Duration = .seconds(60)
    /// Replies larger than this close their connection with a protocol error.
    public var maxReplyBytes: Int = 64 * 1024 * 1024
    /// Reconnect backoff after a failed connect: starts here, doubles, jittered, up to ``maxBackoff``.
    public var initialBackoff: Duration = .milliseconds(50)
    public var maxBackoff: Duration = .seconds(5)
    /// Name sent with `CLIENT SETNAME`, so `CLIENT LIST` shows which service a connection belongs to.
    public var clientName: String?

    public init(url: RedisURL) {
        self.url = url
    }
}

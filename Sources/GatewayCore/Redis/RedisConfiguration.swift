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
    /// Whether ``url`` is a node of a Redis Cluster: the client then learns which node serves each hash
    /// slot (`CLUSTER SLOTS`), sends every command to the node of its key, and follows `MOVED` and `ASK`
    /// redirections. The database must be 0.
    public var cluster: Bool = false
    /// More nodes of the cluster to learn its layout from when the URL's node is down (same credentials).
    public var clusterSeeds: [RedisNodeAddress] = []
    /// What a `rediss://` URL trusts and shows (every node of a cluster alike); unused for `redis://`.
    public var tls = RedisTLSSettings()

    /// The URL's node, then the other seeds: where a cluster client starts.
    public var seedURLs: [RedisURL] {
        [url] + clusterSeeds.map { url.at($0) }.filter { $0 != url }
    }

    public init(url: RedisURL) {
        self.url = url
    }
}

/// A Redis server's `host:port`.
public struct RedisNodeAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (`[v6]:port` for an IPv6 address); nil when it is not one.
    public init?(parsing text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == "@" || $0 == " " }) else { return nil }
        self.init(host: String(host), port: port)
    }

    public var description: String {
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension RedisURL {
    /// This URL (credentials, database) pointing at another server.
    public func at(_ node: RedisNodeAddress) -> RedisURL {
        var url = self
        url.host = node.host
        url.port = node.port
        return url
    }

    public var nodeAddress: RedisNodeAddress { RedisNodeAddress(host: host, port: port) }
}

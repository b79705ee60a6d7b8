import GatewayCore
import NIOCore

/// Everything `gateway-engine` reads from its configuration sources.
public struct EngineConfiguration: Sendable {
    public var common: CommonSettings
    /// The data listener (API traffic).
    public var listenHost: String
    public var listenPort: Int
    /// A path the data listener answers itself, for balancers' active health checks: 200 while the engine
    /// serves (definitions loaded, not draining), 503 otherwise.
    public var healthPath: String
    public var limits: ProxyLimits
    /// Event loop threads for the data plane (0 = one per core).
    public var eventLoopThreads: Int
    public var cacheMaxBytes: Int
    public var cacheMaxEntryBytes: Int
    /// YAML file of API definitions written to Redis at start-up when missing there.
    public var seedFile: String?
    /// `missing`: only definitions Redis does not have; `overwrite`: replace them all.
    public var seedMode: String
    public var versionCheckInterval: Duration
    /// Whether to log one JSON access line per request.
    public var accessLog: Bool
    /// Engines sharing the limits when Redis is unreachable (local limiter at rate ÷ this).
    public var liveNodesFallback: Int
    public var rateLimitTimeout: Duration
    /// `https://` backends: the CAs their certificates must chain to (`backends.caFile`; nil for the
    /// system's trust store) and the client certificate shown to those that ask (`backends.certFile`,
    /// `backends.keyFile`). Reread on SIGHUP.
    public var backendTLS = ClientTLSFiles()
    /// A TLS data listener besides the plain one (`tls.port`, `tls.certFile`, `tls.keyFile`, and
    /// `tls.clientCaFile` for mutual TLS), for balancers that reach engines over TLS (`upstream.tls` on
    /// the balancer).
    public var tls: TLSListenerSettings? = nil
    /// Proxies whose `X-Forwarded-Proto`/`-Host` the engine keeps (`listen.trustedProxies`): the
    /// balancers, so backends learn the scheme and host the client used at the edge.
    public var trustedProxies = AddressRanges()

    static func healthPath(_ v: inout ConfigValidator) -> String {
        let path = v.string("listen.healthPath", default: "/__gateway/health")
        if !path.hasPrefix("/") { v.report("listen.healthPath", value: path, expected: "a path starting with /") }
        return path
    }

    /// Reads and validates every key; problems are collected in `v`.
    public static func read(_ v: inout ConfigValidator) -> EngineConfiguration {
        let common = CommonSettings.read(&v, serviceName: "gateway-engine", defaultAdminPort: 9101)
        var limits = ProxyLimits()
        limits.maxHeaderBytes = v.byteSize("limits.maxHeaderBytes", default: 32 << 10, in: 1024...(1 << 20))
        limits.maxBodyBytes = v.byteSize("limits.maxBodyBytes", default: 10 << 20, in: 0...(1 << 32))
        limits.maxConnections = v.int("limits.maxConnections", default: 10_000, in: 1...1_000_000)
        limits.headerReadTimeout = v.duration("limits.headerReadTimeout", default: .seconds(10), min: .milliseconds(10)).timeAmount
        limits.bodyReadTimeout = v.duration("limits.bodyReadTimeout", default: .seconds(30), min: .milliseconds(10)).timeAmount
        limits.idleTimeout = v.duration("limits.idleTimeout", default: .seconds(60), min: .milliseconds(10)).timeAmount
        limits.tunnelIdleTimeout = v.duration("limits.tunnelIdleTimeout", default: .seconds(600), min: .milliseconds(10)).timeAmount
        limits.maxConcurrentStreams = v.int("limits.maxConcurrentStreams", default: 100, in: 1...10_000)
        let backendTLS = ClientTLSFiles.read(&v, prefix: "backends")
        var configuration = EngineConfiguration(
            common: common,
            listenHost: v.string("listen.host", default: "127.0.0.1"),
            listenPort: v.int("listen.port", default: 8001, in: 0...65535),
            healthPath: Self.healthPath(&v),
            limits: limits,
            eventLoopThreads: v.int("eventLoops", default: 0, in: 0...256),
            cacheMaxBytes: v.byteSize("cache.maxBytes", default: 64 << 20, in: 0...(1 << 36)),
            cacheMaxEntryBytes: v.byteSize("cache.maxEntryBytes", default: 1 << 20, in: 1...(1 << 30)),
            seedFile: v.optionalString("apis.seedFile"),
            seedMode: v.choice("apis.seedMode", default: "missing", allowed: ["missing", "overwrite"]),
            versionCheckInterval: v.duration("apis.versionCheckInterval", default: .milliseconds(500), min: .milliseconds(50)),
            accessLog: v.bool("log.access", default: true),
            liveNodesFallback: v.int("ratelimit.liveNodes", default: 1, in: 1...10_000),
            rateLimitTimeout: v.duration("ratelimit.redisTimeout", default: .milliseconds(250), min: .milliseconds(1)))
        configuration.backendTLS = backendTLS
        configuration.tls = TLSListenerSettings.read(&v, defaultPort: 8444, listenHost: configuration.listenHost)
        configuration.trustedProxies = AddressRanges.readTrustedProxies(&v)
        return configuration
    }
}

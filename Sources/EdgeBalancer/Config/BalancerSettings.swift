import Configuration
import Foundation
import GatewayCore
import Logging
import NIOCore

/// The edge balancer's configuration: the shared settings (see `docs/configuration.md`) plus its own
/// keys. Every problem is collected by the ``ConfigValidator``, not just the first. Environment prefix
/// `GC_BALANCER_`; admin port 9103 by default.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `listen.host`, `listen.port` | `127.0.0.1`, `8080` | plain listener: HTTP/1.1 and h2c |
/// | `tls.host`, `tls.port`, `tls.certFile`, `tls.keyFile` | `listen.host`, `8443`, none, none | TLS listener (h2 + http/1.1 by ALPN); both files or neither; reread on SIGHUP |
/// | `region` | empty (locality off) | this balancer's region |
/// | `policy` | `weighted` | `round_robin`, `weighted`, `least_request`, `peak_ewma`, `consistent_hash` (an operator's runtime switch in Redis wins) |
/// | `hash.key`, `hash.balanceFactor` | `ip`, `1.25` | `consistent_hash`: what a request is hashed by (`ip`, `header:<name>`, `cookie:<name>`) and the load bound |
/// | `nodes.static` | none | `id=a,host=…,port=…,weight=…,region=…,zone=…` entries, `;`-separated or a list |
/// | `discovery.redis` | `true` | read nodes, weights, drains, policy from Redis |
/// | `discovery.resyncInterval` | `1s` | full reread of the registry, besides events |
/// | `discovery.pruneExpired` | `true` | remove expired ids from the node index |
/// | `health.enabled`, `health.path` | `true`, `/__gateway/health` | active checks |
/// | `health.interval`, `health.timeout` | `1s`, `500ms` | |
/// | `health.rise`, `health.fall` | `2`, `2` | consecutive passes / failures to change state |
/// | `health.expectedStatus` | `200-299` | e.g. `200`, `2xx`, `200,204` |
/// | `health.panicThresholdPercent` | `50` | panic when fewer usable than this share of eligible |
/// | `outlier.enabled`, `outlier.consecutiveFailures` | `true`, `5` | passive ejection |
/// | `outlier.baseEjection`, `outlier.maxEjection` | `5s`, `300s` | ejection time = base × repeats, capped |
/// | `outlier.maxEjectedPercent` | `50` | never more ejected at once |
/// | `slowStart.window`, `slowStart.minWeightPercent` | `30s`, `10` | ramp of a joining or recovering node |
/// | `ewma.decay`, `ewma.initialLatency` | `10s`, `1ms` | peak-EWMA τ and a new node's estimate |
/// | `locality.enabled`, `locality.overprovisioningFactor` | `true`, `1.4` | |
/// | `retry.enabled`, `retry.budgetPercent`, `retry.minPerSecond` | `true`, `20`, `10` | one retry of idempotent requests |
/// | `retry.onStatus` | none | node answers (500–599) retried like a failure, e.g. `502,503,504` |
/// | `upstream.connectTimeout`, `upstream.responseTimeout` | `2s`, `30s` | |
/// | `upstream.maxIdlePerNode` | `64` | idle keep-alive connections kept per node and event loop; more stay open while they are reused, those above it unused for 5 s are closed |
/// | `upstream.maxConnectionsPerNode` | `1024` | open connections (http1) or concurrent streams (h2c, h2) per node, split evenly over the event loops (at least 1 each); requests past it wait up to `upstream.connectTimeout`, then 503 |
/// | `upstream.protocol` | `http1` | `http1` (keep-alive pools), `h2c` (HTTP/2 with prior knowledge, requests multiplexed as streams) or `h2` (HTTP/2 over TLS, with `upstream.tls`) |
/// | `limits.maxConnections`, `limits.maxHeaderBytes`, `limits.maxBodyBytes` | `10000`, `32KiB`, `10MiB` | |
/// | `limits.maxReplayBodyBytes`, `limits.maxConcurrentStreams` | `64KiB`, `100` | |
/// | `limits.headerReadTimeout`, `limits.bodyReadTimeout`, `limits.idleTimeout` | `10s`, `30s`, `60s` | |
/// | `limits.tunnelIdleTimeout` | `10m` | a WebSocket (protocol-switched) connection with no byte either way for this long closes |
/// | `accessLog.level` | `info` | `off`, `debug` or `info` |
struct BalancerSettings: Sendable {
    var common: CommonSettings
    /// The plain listener (HTTP/1.1 and h2c).
    var listenHost: String
    var listenPort: Int
    /// The TLS listener (the shared front's: ALPN h2 + http/1.1, certificate and key reread on SIGHUP).
    var tls: TLSListenerSettings?
    /// Nodes are reached over TLS (`upstream.tls`), their certificates verified against `upstream.caFile`
    /// or the system's trust store, with the client certificate `upstream.certFile`/`keyFile` for engines
    /// that require one (`tls.clientCaFile` on the engine). Reread on SIGHUP.
    var upstreamTLS = false
    var upstreamTLSFiles = ClientTLSFiles()
    /// Proxies in front of the balancer (a CDN, an L7 load balancer) whose `X-Forwarded-Proto`/`-Host`
    /// are kept (`listen.trustedProxies`).
    var trustedProxies = AddressRanges()
    var limits: ProxyLimits
    var maxIdlePerNode: Int
    var maxConnectionsPerNode: Int
    var upstreamProtocol: UpstreamProtocol
    var router: BalancerRouter.Configuration
    var controller: BalancerController.Configuration
    var health: ActiveHealthChecker.Configuration
    var outlier: OutlierDetector.Configuration
    var registry: NodeRegistry.Configuration
    /// Read nodes, overrides, drains and the policy from Redis (off: static nodes only, runtime changes
    /// stay local).
    var useRedis: Bool
    var staticNodes: [NodeDescriptor]

    static let serviceName = "edge-balancer"
    static let defaultAdminPort = 9103

    static func read(_ v: inout ConfigValidator) -> BalancerSettings {
        let common = CommonSettings.read(&v, serviceName: serviceName, defaultAdminPort: defaultAdminPort)

        let listenHost = v.string("listen.host", default: "127.0.0.1")
        let listenPort = v.int("listen.port", default: 8080, in: 0...65535)
        let tls = TLSListenerSettings.read(&v, defaultPort: 8443, listenHost: listenHost)

        var limits = ProxyLimits()
        limits.maxConnections = v.int("limits.maxConnections", default: limits.maxConnections, in: 1...1_000_000)
        limits.maxHeaderBytes = v.byteSize("limits.maxHeaderBytes", default: limits.maxHeaderBytes, in: 1024...(1 << 20))
        limits.maxBodyBytes = v.byteSize("limits.maxBodyBytes", default: limits.maxBodyBytes, in: 0...(1 << 34))
        limits.maxReplayBodyBytes = v.byteSize("limits.maxReplayBodyBytes", default: limits.maxReplayBodyBytes, in: 0...(64 << 20))
        limits.maxConcurrentStreams = v.int("limits.maxConcurrentStreams", default: limits.maxConcurrentStreams, in: 1...10_000)
        limits.headerReadTimeout = v.duration("limits.headerReadTimeout", default: .seconds(10), min: .milliseconds(10)).timeAmount
        limits.bodyReadTimeout = v.duration("limits.bodyReadTimeout", default: .seconds(30), min: .milliseconds(10)).timeAmount
        limits.idleTimeout = v.duration("limits.idleTimeout", default: .seconds(60), min: .milliseconds(10)).timeAmount
        limits.tunnelIdleTimeout = v.duration("limits.tunnelIdleTimeout", default: .seconds(600), min: .milliseconds(10)).timeAmount
        let maxIdlePerNode = v.int("upstream.maxIdlePerNode", default: 64, in: 0...10_000)
        let maxConnectionsPerNode = v.int("upstream.maxConnectionsPerNode", default: 1024, in: 1...1_000_000)
        let upstreamProtocol =
            UpstreamProtocol(
                rawValue: v.choice("upstream.protocol", default: UpstreamProtocol.http1.rawValue, allowed: UpstreamProtocol.allCases.map(\.rawValue)))
            ?? .http1

        var router = BalancerRouter.Configuration()
        router.connectTimeout = v.duration("upstream.connectTimeout", default: .seconds(2), min: .milliseconds(1)).timeAmount
        router.responseTimeout = v.duration("upstream.responseTimeout", default: .seconds(30), min: .milliseconds(1)).timeAmount
        router.retries = v.bool("retry.enabled", default: true)
        router.retryBudget.ratio = Double(v.int("retry.budgetPercent", default: 20, in: 0...100)) / 100
        router.retryBudget.minimumPerSecond = v.int("retry.minPerSecond", default: 10, in: 0...100_000)
        var retried: [Int] = []
        for text in v.stringList("retry.onStatus", default: []) {
            if let code = Int(text), (500...599).contains(code) {
                retried.append(code)
            } else {
                v.report("retry.onStatus", value: text, expected: "server error statuses in 500...599, comma-separated")
            }
        }
        router.retryOnStatus = ServerErrorStatuses(retried)
        switch v.choice("accessLog.level", default: "info", allowed: ["off", "debug", "info"]) {
        case "off": router.accessLogLevel = nil
        case "debug": router.accessLogLevel = .debug
        default: router.accessLogLevel = .info
        }
        let hashKey = v.string("hash.key", default: "ip")
        if let key = HashKey(parsing: hashKey) {
            router.hashKey = key
        } else {
            v.report("hash.key", value: hashKey, expected: "ip, header:<field name> or cookie:<cookie name>")
        }

        var controller = BalancerController.Configuration()
        controller.region = v.string("region", default: "")
        controller.policy =
            PolicyKind(
                rawValue: v.choice("policy", default: PolicyKind.weighted.rawValue, allowed: PolicyKind.allCases.map(\.rawValue))) ?? .weighted
        controller.hashBalanceFactor = v.double("hash.balanceFactor", default: ConsistentHashPolicy.defaultBalanceFactor, in: 1...100)
        controller.locality = v.bool("locality.enabled", default: true)
        controller.overprovisioningFactor = v.double("locality.overprovisioningFactor", default: 1.4, in: 1...10)
        controller.panicThreshold = Double(v.int("health.panicThresholdPercent", default: 50, in: 0...100)) / 100
        controller.slowStartWindow = v.duration("slowStart.window", default: .seconds(30), max: .seconds(3600))
        controller.slowStartMinimumFactor = Double(v.int("slowStart.minWeightPercent", default: 10, in: 1...100)) / 100
        controller.ewma.decay = v.duration("ewma.decay", default: .seconds(10), min: .milliseconds(10), max: .seconds(3600))
        controller.ewma.initialLatency = v.duration("ewma.initialLatency", default: .milliseconds(1), max: .seconds(60))

        var health = ActiveHealthChecker.Configuration()
        health.enabled = v.bool("health.enabled", default: true)
        health.path = v.string("health.path", default: "/__gateway/health")
        if !health.path.hasPrefix("/") { v.report("health.path", value: health.path, expected: "a path starting with /") }
        health.interval = v.duration("health.interval", default: .seconds(1), min: .milliseconds(10))
        health.timeout = v.duration("health.timeout", default: .milliseconds(500), min: .milliseconds(1))
        let statusText = v.string("health.expectedStatus", default: "200-299")
        if let matcher = StatusMatcher(statusText) {
            health.expectedStatus = matcher
        } else {
            v.report("health.expectedStatus", value: statusText, expected: "status codes such as 200, 200-299, 2xx or 200,204")
        }
        controller.healthChecks = health.enabled
        controller.rise = v.int("health.rise", default: 2, in: 1...100)
        controller.fall = v.int("health.fall", default: 2, in: 1...100)

        var outlier = OutlierDetector.Configuration()
        outlier.enabled = v.bool("outlier.enabled", default: true)
        outlier.consecutiveFailures = v.int("outlier.consecutiveFailures", default: 5, in: 1...1000)
        outlier.baseEjection = v.duration("outlier.baseEjection", default: .seconds(5), min: .milliseconds(1))
        outlier.maxEjection = v.duration("outlier.maxEjection", default: .seconds(300), min: .milliseconds(1))
        outlier.maxEjectedFraction = Double(v.int("outlier.maxEjectedPercent", default: 50, in: 0...100)) / 100

        var registry = NodeRegistry.Configuration()
        registry.resyncInterval = v.duration("discovery.resyncInterval", default: .seconds(1), min: .milliseconds(10))
        registry.pruneExpired = v.bool("discovery.pruneExpired", default: true)
        let useRedis = v.bool("discovery.redis", default: true)

        var staticNodes: [NodeDescriptor] = []
        let entries = v.stringArray("nodes.static") ?? v.raw("nodes.static").map { [$0] } ?? []
        switch StaticNodes.parse(entries: entries.flatMap { $0.split(separator: ";").map(String.init) }) {
        case .success(let nodes): staticNodes = nodes
        case .failure(let problem):
            v.report(
                "nodes.static", value: problem.entry, expected: "entries like id=a,host=10.0.0.1,port=8081,weight=1,region=eu (\(problem.message))")
        }
        if !useRedis && staticNodes.isEmpty {
            v.report("nodes.static", value: nil, expected: "at least one node when discovery.redis is false")
        }

        let upstreamTLS = v.bool("upstream.tls", default: false)
        if upstreamTLS && upstreamProtocol == .h2c {
            v.report("upstream.protocol", value: "h2c", expected: "http1 or h2 with upstream.tls (h2c is HTTP/2 without TLS)")
        }
        if !upstreamTLS && upstreamProtocol == .h2 {
            v.report("upstream.protocol", value: "h2", expected: "http1 or h2c without upstream.tls (h2 is HTTP/2 over TLS)")
        }
        let upstreamTLSFiles = ClientTLSFiles.read(&v, prefix: "upstream", enabled: upstreamTLS, enabledBy: "upstream.tls is true")
        registry.tls = upstreamTLS
        var settings = BalancerSettings(
            common: common, listenHost: listenHost, listenPort: listenPort, tls: tls, limits: limits,
            maxIdlePerNode: maxIdlePerNode, maxConnectionsPerNode: maxConnectionsPerNode, upstreamProtocol: upstreamProtocol, router: router,
            controller: controller, health: health, outlier: outlier,
            registry: registry, useRedis: useRedis, staticNodes: staticNodes)
        settings.upstreamTLS = upstreamTLS
        settings.upstreamTLSFiles = upstreamTLSFiles
        settings.trustedProxies = AddressRanges.readTrustedProxies(&v)
        return settings
    }
}

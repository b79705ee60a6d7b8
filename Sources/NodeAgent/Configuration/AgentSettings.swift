import Foundation
import GatewayCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Everything the node-agent is configured with: the shared keys (``CommonSettings``) and its own.
///
/// Read it with ``read(_:environment:hostname:)`` through a ``ConfigValidator`` so every bad key is
/// reported at once (`--check-config` prints them all).
public struct AgentSettings: Sendable {
    public var common: CommonSettings
    /// What the node record advertises.
    public var node: NodeIdentity
    /// Where the local engine's admin API is and how to call it.
    public var engine: EngineSettings
    /// How often the agent probes the engine and renews its registration.
    public var heartbeatInterval: Duration
    /// How long the node record lives without a heartbeat (3 heartbeats unless set).
    public var lease: Duration
    /// The small local file holding the id of the last invalidation applied to the engine.
    public var stateFile: String
    /// On SIGTERM: the longest the agent waits for the engine's in-flight requests to reach zero.
    public var drainDeadline: Duration
    /// On SIGTERM: the least time the node stays `draining` before it may deregister, so balancers have
    /// seen the change before the record disappears.
    public var drainGrace: Duration
    /// How long one blocking read of the invalidation stream waits.
    public var invalidationBlock: Duration
    /// The approximate length the stream is trimmed to when this process publishes an invalidation.
    public var invalidationMaxLength: Int

    public var keys: ClusterKeys { ClusterKeys(prefix: common.keyPrefix) }

    public init(
        common: CommonSettings, node: NodeIdentity, engine: EngineSettings, heartbeatInterval: Duration = .seconds(1),
        lease: Duration? = nil, stateFile: String, drainDeadline: Duration = .seconds(20), drainGrace: Duration = .seconds(1),
        invalidationBlock: Duration = .seconds(2), invalidationMaxLength: Int = 10_000
    ) {
        self.common = common
        self.node = node
        self.engine = engine
        self.heartbeatInterval = heartbeatInterval
        self.lease = lease ?? heartbeatInterval * 3
        self.stateFile = stateFile
        self.drainDeadline = drainDeadline
        self.drainGrace = drainGrace
        self.invalidationBlock = invalidationBlock
        self.invalidationMaxLength = invalidationMaxLength
    }

    /// The default admin listener port of the node-agent.
    public static let defaultAdminPort = 9102

    /// Reads and checks every key, reporting each problem to `v`.
    ///
    /// - Parameters:
    ///   - environment: the process environment (for `STATE_DIRECTORY`, which systemd sets).
    ///   - hostname: the default node id.
    public static func read(
        _ v: inout ConfigValidator, environment: [String: String] = ProcessInfo.processInfo.environment,
        hostname: String = currentHostname()
    ) -> AgentSettings {
        var common = CommonSettings.read(&v, serviceName: "node-agent", defaultAdminPort: defaultAdminPort)

        let id = v.string("node.id", default: hostname)
        checkName(&v, "node.id", id)
        let region = v.string("node.region", default: "default")
        checkName(&v, "node.region", region)
        let zone = v.string("node.zone", default: region)
        checkName(&v, "node.zone", zone)
        let address = v.string("node.address", default: "127.0.0.1")
        if address.isEmpty || address.contains(where: { $0 == " " || $0 == "/" }) {
            v.report("node.address", value: address, expected: "the host name or IP address balancers reach the engine at")
        }
        let port = v.int("node.port", default: 8080, in: 1...65535)
        let weight = v.int("node.weight", default: 100, in: 0...10_000)
        let labels = NodeIdentity.parseLabels(v.stringList("node.labels", default: [])) { label in
            v.report("node.labels", value: label, expected: "key=value labels (letters, digits, '.', '_', '-', '/')")
        }

        let adminURL = v.httpURL("engine.adminURL", default: "http://127.0.0.1:9101") ?? "http://127.0.0.1:9101"
        if !adminURL.hasPrefix("http://") {
            v.report("engine.adminURL", value: adminURL, expected: "an http:// URL (the engine's admin listener is plain HTTP on loopback)")
        }
        var token = v.optionalString("engine.token", secret: true)
        if token == nil, let file = v.optionalString("engine.tokenFile") {
            do {
                token = try readSecretFile(file)
            } catch {
                v.report("engine.tokenFile", value: file, expected: "a readable file holding the engine's admin token (\(error))")
            }
        }

        let interval = v.duration("heartbeat.interval", default: .seconds(1), min: .milliseconds(50), max: .seconds(60))
        let lease = v.duration("heartbeat.lease", default: interval * 3, min: .milliseconds(100))
        if lease < interval * 2 {
            v.report("heartbeat.lease", value: "\(Self.format(lease))", expected: "at least two heartbeat intervals (\(Self.format(interval * 2)))")
        }
        let probeTimeout = v.duration("engine.probeTimeout", default: min(.milliseconds(500), interval / 2), min: .milliseconds(10))
        if probeTimeout >= interval {
            v.report(
                "engine.probeTimeout", value: Self.format(probeTimeout),
                expected: "less than heartbeat.interval (\(Self.format(interval))), so a hung engine cannot delay the heartbeat")
        }
        let requestTimeout = v.duration("engine.requestTimeout", default: .seconds(5), min: .milliseconds(10))

        let defaultStateDirectory = environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) } ?? "."
        let stateFile = v.string("state.file", default: "\(defaultStateDirectory)/node-agent-\(id).state")
        if stateFile.isEmpty || stateFile.hasSuffix("/") {
            v.report("state.file", value: stateFile, expected: "a file path (the agent writes it atomically beside itself)")
        }

        let drainDeadline = v.duration("drain.deadline", default: .seconds(20), min: .zero)
        if drainDeadline >= common.shutdownDeadline {
            v.report(
                "drain.deadline", value: Self.format(drainDeadline),
                expected: "less than shutdown.deadline (\(Self.format(common.shutdownDeadline))), leaving time to deregister")
        }
        let drainGrace = v.duration("drain.grace", default: min(interval, drainDeadline), min: .zero)
        if drainGrace > drainDeadline {
            v.report("drain.grace", value: Self.format(drainGrace), expected: "at most drain.deadline (\(Self.format(drainDeadline)))")
        }
        let block = v.duration("invalidations.block", default: .seconds(2), min: .milliseconds(10), max: .seconds(60))
        let maxLength = v.int("invalidations.maxLength", default: 10_000, in: 10...100_000_000)

        // The agent must be back within about a heartbeat once Redis is: cap the pool's reconnect backoff.
        common.redis.maxBackoff = min(common.redis.maxBackoff, interval)
        common.redis.initialBackoff = min(common.redis.initialBackoff, common.redis.maxBackoff)

        return AgentSettings(
            common: common,
            node: NodeIdentity(id: id, region: region, zone: zone, address: address, port: port, weight: weight, labels: labels),
            engine: EngineSettings(
                adminURL: adminURL.hasSuffix("/") ? String(adminURL.dropLast()) : adminURL,
                token: token ?? common.admin.token, probeTimeout: probeTimeout, requestTimeout: requestTimeout),
            heartbeatInterval: interval, lease: lease, stateFile: stateFile, drainDeadline: drainDeadline,
            drainGrace: drainGrace, invalidationBlock: block, invalidationMaxLength: maxLength)
    }

    /// Ids, regions and zones become parts of Redis keys and label values: keep them plain.
    private static func checkName(_ v: inout ConfigValidator, _ key: String, _ value: String) {
        if value.isEmpty || value.count > 128 || !value.allSatisfy(NodeIdentity.isNameCharacter) {
            v.report(key, value: value, expected: "1-128 letters, digits, '.', '_' or '-'")
        }
    }

    static func format(_ d: Duration) -> String {
        let ms = d.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }

    /// This host's name, the default node id.
    public static func currentHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}

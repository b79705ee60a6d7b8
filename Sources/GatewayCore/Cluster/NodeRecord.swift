/// One engine node as registered in Redis by its agent: hash `<prefix>:node:<id>`.
///
/// Every field is stored as text in the hash, under the names of ``Field``.
public struct NodeRecord: Sendable, Hashable, Codable {
    public enum Field: String, CaseIterable, Sendable {
        case id, region, zone, address, port, weight, state, health, healthReason = "health_reason"
        case inFlight = "in_flight", requestsPerSecond = "rps", p50Milliseconds = "p50_ms", p99Milliseconds = "p99_ms"
        case errorRate = "error_rate", cpuPercent = "cpu_pct", memoryBytes = "mem_bytes"
        case version, definitionsVersion = "defs_version", lastInvalidation = "last_invalidation"
        case labels, updatedAtMilliseconds = "updated_ms"
    }

    public var id: String
    public var region: String
    public var zone: String
    /// Where balancers send traffic (the engine's data listener).
    public var address: String
    public var port: Int
    /// The weight the agent advertises (an operator override in `<prefix>:weights` wins).
    public var weight: Int
    public var state: NodeState
    public var health: NodeHealth
    public var healthReason: String
    public var inFlight: Int
    public var requestsPerSecond: Double
    public var p50Milliseconds: Double
    public var p99Milliseconds: Double
    public var errorRate: Double
    public var cpuPercent: Double
    public var memoryBytes: Int
    /// The engine's software version.
    public var version: String
    /// The hash of the API definitions the engine serves (drift shows as differing values).
    public var definitionsVersion: String
    /// The id of the last cache invalidation the agent applied to its engine.
    public var lastInvalidation: String
    /// `key=value` labels, comma-separated.
    public var labels: String
    public var updatedAtMilliseconds: Int64

    public init(
        id: String, region: String, zone: String, address: String, port: Int, weight: Int = 100,
        state: NodeState = .up, health: NodeHealth = .up, healthReason: String = "", inFlight: Int = 0,
        requestsPerSecond: Double = 0, p50Milliseconds: Double = 0, p99Milliseconds: Double = 0, errorRate: Double = 0,
        cpuPercent: Double = 0, memoryBytes: Int = 0, version: String = GatewayVersion.current, definitionsVersion: String = "",
        lastInvalidation: String = "0-0", labels: String = "", updatedAtMilliseconds: Int64 = 0
    ) {
        self.id = id
        self.region = region
        self.zone = zone
        self.address = address
        self.port = port
        self.weight = weight
        self.state = state
        self.health = health
        self.healthReason = healthReason
        self.inFlight = inFlight
        self.requestsPerSecond = requestsPerSecond
        self.p50Milliseconds = p50Milliseconds
        self.p99Milliseconds = p99Milliseconds
        self.errorRate = errorRate
        self.cpuPercent = cpuPercent
        self.memoryBytes = memoryBytes
        self.version = version
        self.definitionsVersion = definitionsVersion
        self.lastInvalidation = lastInvalidation
        self.labels = labels
        self.updatedAtMilliseconds = updatedAtMilliseconds
    }

    /// The record as hash fields, for `HSET`.
    public var fields: [(String, String)] {
        [
            (Field.id.rawValue, id), (Field.region.rawValue, region), (Field.zone.rawValue, zone),
            (Field.address.rawValue, address), (Field.port.rawValue, String(port)), (Field.weight.rawValue, String(weight)),
            (Field.state.rawValue, state.rawValue), (Field.health.rawValue, health.rawValue),
            (Field.healthReason.rawValue, healthReason), (Field.inFlight.rawValue, String(inFlight)),
            (Field.requestsPerSecond.rawValue, String(requestsPerSecond)), (Field.p50Milliseconds.rawValue, String(p50Milliseconds)),
            (Field.p99Milliseconds.rawValue, String(p99Milliseconds)), (Field.errorRate.rawValue, String(errorRate)),
            (Field.cpuPercent.rawValue, String(cpuPercent)), (Field.memoryBytes.rawValue, String(memoryBytes)),
            (Field.version.rawValue, version), (Field.definitionsVersion.rawValue, definitionsVersion),
            (Field.lastInvalidation.rawValue, lastInvalidation), (Field.labels.rawValue, labels),
            (Field.updatedAtMilliseconds.rawValue, String(updatedAtMilliseconds)),
        ]
    }

    /// Reads a record from `HGETALL` output; nil when the essentials (id, address, port) are missing.
    public init?(fields h: [String: String]) {
        guard let id = h[Field.id.rawValue], let address = h[Field.address.rawValue],
            let port = h[Field.port.rawValue].flatMap(Int.init)
        else { return nil }
        self.init(
            id: id, region: h[Field.region.rawValue] ?? "", zone: h[Field.zone.rawValue] ?? "", address: address, port: port,
            weight: h[Field.weight.rawValue].flatMap(Int.init) ?? 100,
            state: h[Field.state.rawValue].flatMap(NodeState.init(rawValue:)) ?? .down,
            health: h[Field.health.rawValue].flatMap(NodeHealth.init(rawValue:)) ?? .down,
            healthReason: h[Field.healthReason.rawValue] ?? "",
            inFlight: h[Field.inFlight.rawValue].flatMap(Int.init) ?? 0,
            requestsPerSecond: h[Field.requestsPerSecond.rawValue].flatMap(Double.init) ?? 0,
            p50Milliseconds: h[Field.p50Milliseconds.rawValue].flatMap(Double.init) ?? 0,
            p99Milliseconds: h[Field.p99Milliseconds.rawValue].flatMap(Double.init) ?? 0,
            errorRate: h[Field.errorRate.rawValue].flatMap(Double.init) ?? 0,
            cpuPercent: h[Field.cpuPercent.rawValue].flatMap(Double.init) ?? 0,
            memoryBytes: h[Field.memoryBytes.rawValue].flatMap(Int.init) ?? 0,
            version: h[Field.version.rawValue] ?? "", definitionsVersion: h[Field.definitionsVersion.rawValue] ?? "",
            lastInvalidation: h[Field.lastInvalidation.rawValue] ?? "0-0", labels: h[Field.labels.rawValue] ?? "",
            updatedAtMilliseconds: h[Field.updatedAtMilliseconds.rawValue].flatMap(Int64.init) ?? 0)
    }
}

/// Messages on the events channel (`<prefix>:events`), as JSON `{"type": …, …}`.
///
/// Pub/sub is lossy: every reader also resyncs on a timer and after each reconnect, so a lost event only
/// delays convergence.
public enum ClusterEvent: Sendable, Hashable, Codable {
    case nodeUp(node: String)
    case nodeChanged(node: String)
    case nodeDown(node: String)
    case weightChanged(node: String)
    case drainChanged(node: String)
    case apisChanged(version: Int64)
    case keyRevoked(hash: String)
    case policyChanged

    private enum CodingKeys: String, CodingKey { case type, node, version, hash }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .type) {
        case "node_up": self = .nodeUp(node: try c.decode(String.self, forKey: .node))
        case "node_changed": self = .nodeChanged(node: try c.decode(String.self, forKey: .node))
        case "node_down": self = .nodeDown(node: try c.decode(String.self, forKey: .node))
        case "weight_changed": self = .weightChanged(node: try c.decode(String.self, forKey: .node))
        case "drain_changed": self = .drainChanged(node: try c.decode(String.self, forKey: .node))
        case "apis_changed": self = .apisChanged(version: try c.decode(Int64.self, forKey: .version))
        case "key_revoked": self = .keyRevoked(hash: try c.decode(String.self, forKey: .hash))
        case "policy_changed": self = .policyChanged
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown event type \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .nodeUp(let n): try c.encode("node_up", forKey: .type); try c.encode(n, forKey: .node)
        case .nodeChanged(let n): try c.encode("node_changed", forKey: .type); try c.encode(n, forKey: .node)
        case .nodeDown(let n): try c.encode("node_down", forKey: .type); try c.encode(n, forKey: .node)
        case .weightChanged(let n): try c.encode("weight_changed", forKey: .type); try c.encode(n, forKey: .node)
        case .drainChanged(let n): try c.encode("drain_changed", forKey: .type); try c.encode(n, forKey: .node)
        case .apisChanged(let v): try c.encode("apis_changed", forKey: .type); try c.encode(v, forKey: .version)
        case .keyRevoked(let h): try c.encode("key_revoked", forKey: .type); try c.encode(h, forKey: .hash)
        case .policyChanged: try c.encode("policy_changed", forKey: .type)
        }
    }
}

import Foundation

extension ClusterEvent {
    /// The event as the JSON text published on the channel.
    public var json: String {
        (try? JSONEncoder().encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Parses a published message; nil for anything else.
    public init?(json: String) {
        guard let value = try? JSONDecoder().decode(ClusterEvent.self, from: Data(json.utf8)) else { return nil }
        self = value
    }
}

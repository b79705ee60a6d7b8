import Foundation
import GatewayCore

/// The engine's `/health` body: `status`, and when available `in_flight`, `requests_total`,
/// `errors_total`, `p50_ms`, `p99_ms`, `defs_version`, `redis` (`up` or `down`), `version`,
/// `cpu_pct`, `mem_bytes`. Numbers may come as JSON numbers or as numeric strings.
struct EngineHealthReport: Sendable, Equatable {
    var status: String?
    var inFlight: Int?
    var requestsTotal: Double?
    var errorsTotal: Double?
    var p50Milliseconds: Double?
    var p99Milliseconds: Double?
    var definitionsVersion: String?
    /// Whether the engine reaches Redis: `up` or `down`.
    var redis: String?
    var version: String?
    var cpuPercent: Double?
    var memoryBytes: Int?

    init(
        status: String? = nil, inFlight: Int? = nil, requestsTotal: Double? = nil, errorsTotal: Double? = nil,
        p50Milliseconds: Double? = nil, p99Milliseconds: Double? = nil, definitionsVersion: String? = nil,
        redis: String? = nil, version: String? = nil, cpuPercent: Double? = nil, memoryBytes: Int? = nil
    ) {
        self.status = status
        self.inFlight = inFlight
        self.requestsTotal = requestsTotal
        self.errorsTotal = errorsTotal
        self.p50Milliseconds = p50Milliseconds
        self.p99Milliseconds = p99Milliseconds
        self.definitionsVersion = definitionsVersion
        self.redis = redis
        self.version = version
        self.cpuPercent = cpuPercent
        self.memoryBytes = memoryBytes
    }

    /// Parses the body; nil when it is not a JSON object.
    init?(json: Data) {
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else { return nil }
        let n = { (key: String) in Self.number(object[key]) }
        let s = { (key: String) -> String? in
            if let text = object[key] as? String { return text }
            guard let number = Self.number(object[key]) else { return nil }
            return number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        }
        self.init(
            status: s("status"), inFlight: n("in_flight").map { Int($0) }, requestsTotal: n("requests_total"),
            errorsTotal: n("errors_total"), p50Milliseconds: n("p50_ms"), p99Milliseconds: n("p99_ms"),
            definitionsVersion: s("defs_version"), redis: s("redis"), version: s("version"),
            cpuPercent: n("cpu_pct"), memoryBytes: n("mem_bytes").map { Int($0) })
    }

    static func number(_ value: Any?) -> Double? {
        if let text = value as? String { return Double(text.trimmingWhitespace()).flatMap { $0.isFinite ? $0 : nil } }
        if let number = value as? NSNumber {
            let d = number.doubleValue
            return d.isFinite ? d : nil
        }
        return nil
    }
}

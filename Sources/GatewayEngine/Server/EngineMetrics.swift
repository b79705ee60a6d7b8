import GatewayCore
import Metrics
import NIOConcurrencyHelpers

/// The engine's metrics, created once and cached by their few dimensions (API id, status class,
/// reason); never a request id or a client as a dimension.
final class EngineMetrics: Sendable {
    private struct Key: Hashable {
        var api: String
        var statusClass: String
    }

    private let requests = NIOLockedValueBox<[Key: Metrics.Counter]>([:])
    private let latency = NIOLockedValueBox<[String: Metrics.Timer]>([:])
    private let backendLatency = NIOLockedValueBox<[String: Metrics.Timer]>([:])
    private let reasons = NIOLockedValueBox<[String: Metrics.Counter]>([:])
    let inFlightGauge = Gauge(label: "gc_engine_in_flight_requests")
    let definitionsVersion = Gauge(label: "gc_engine_definitions_version")
    let redisUp = Gauge(label: "gc_engine_redis_up")
    let draining = Gauge(label: "gc_engine_draining")

    /// Requests and errors so far, and a window of recent latencies, for `/health` (the node agent reads
    /// them to report load).
    private let window = NIOLockedValueBox(LatencyWindow())
    private let inFlightBox = NIOLockedValueBox(0)

    struct LatencyWindow {
        var samples = [Double](repeating: 0, count: 2048)
        var next = 0
        var filled = 0
        var requests = 0
        var errors = 0
    }

    func requestStarted() {
        let n = inFlightBox.withLockedValue { n -> Int in
            n += 1
            return n
        }
        inFlightGauge.record(n)
    }

    var inFlight: Int { inFlightBox.withLockedValue { $0 } }

    func requestFinished(api: String, status: Int, duration: Duration) {
        let n = inFlightBox.withLockedValue { n -> Int in
            n = max(0, n - 1)
            return n
        }
        inFlightGauge.record(n)
        let statusClass = "\(status / 100)xx"
        let key = Key(api: api, statusClass: statusClass)
        let counter = requests.withLockedValue { cache in
            if let c = cache[key] { return c }
            let c = Metrics.Counter(label: "gc_engine_requests_total", dimensions: [("api", api), ("status_class", statusClass)])
            cache[key] = c
            return c
        }
        counter.increment()
        let timer = latency.withLockedValue { cache in
            if let t = cache[api] { return t }
            let t = Metrics.Timer(label: "gc_engine_request_duration_seconds", dimensions: [("api", api)], preferredDisplayUnit: .seconds)
            cache[api] = t
            return t
        }
        timer.recordNanoseconds(duration.nanoseconds)
        let ms = duration.seconds * 1000
        window.withLockedValue { w in
            w.samples[w.next] = ms
            w.next = (w.next + 1) % w.samples.count
            w.filled = min(w.filled + 1, w.samples.count)
            w.requests += 1
            if status >= 500 { w.errors += 1 }
        }
    }

    func backendResponded(api: String, duration: Duration) {
        let timer = backendLatency.withLockedValue { cache in
            if let t = cache[api] { return t }
            let t = Metrics.Timer(label: "gc_engine_backend_duration_seconds", dimensions: [("api", api)], preferredDisplayUnit: .seconds)
            cache[api] = t
            return t
        }
        timer.recordNanoseconds(duration.nanoseconds)
    }

    /// Counts an event by kind and reason: `auth_failure`/`bad_signature`, `rate_limited`/`rate`, `cache`/`hit`.
    func count(_ kind: String, _ reason: String) {
        let label = "gc_engine_\(kind)_total"
        let counter = reasons.withLockedValue { cache in
            let id = label + "|" + reason
            if let c = cache[id] { return c }
            let c = Metrics.Counter(label: label, dimensions: [("reason", reason)])
            cache[id] = c
            return c
        }
        counter.increment()
    }

    /// p50 and p99 of recent requests in milliseconds, requests and errors so far.
    func summary() -> (p50: Double, p99: Double, requests: Int, errors: Int) {
        window.withLockedValue { w in
            guard w.filled > 0 else { return (0, 0, w.requests, w.errors) }
            let sorted = w.samples.prefix(w.filled).sorted()
            func q(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))] }
            return (q(0.5), q(0.99), w.requests, w.errors)
        }
    }
}

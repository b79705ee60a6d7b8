import GatewayCore
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The engine's metrics, created once and cached by their few dimensions (API id, status class,
/// reason); never a request id or a client as a dimension.
final class EngineMetrics: Sendable {
    /// The per-request metrics of one API (and of requests that matched none, as API `-`), made once.
    final class API: Sendable {
        /// By status class: 1xx ... 5xx, then anything else.
        let requests: [Metrics.Counter]
        let latency: Metrics.Timer
        let backendLatency: Metrics.Timer

        init(_ api: String) {
            requests = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"].map {
                Metrics.Counter(label: "gc_engine_requests_total", dimensions: [("api", api), ("status_class", $0)])
            }
            latency = Metrics.Timer(label: "gc_engine_request_duration_seconds", dimensions: [("api", api)], preferredDisplayUnit: .seconds)
            backendLatency = Metrics.Timer(
                label: "gc_engine_backend_duration_seconds", dimensions: [("api", api)], preferredDisplayUnit: .seconds)
        }
    }

    /// `gc_engine_cache_total` by result, made once: counted on every cacheable request, without the
    /// lock and lookup of ``count(_:_:)``.
    private let cacheResults: [Metrics.Counter] = ResponseCache.Status.allCases.map {
        Metrics.Counter(label: "gc_engine_cache_total", dimensions: [("reason", $0.rawValue)])
    }

    func cacheResult(_ status: ResponseCache.Status) {
        cacheResults[status.index].increment()
    }

    private let apis = NIOLockedValueBox<[String: API]>([:])
    private let reasons = NIOLockedValueBox<[ReasonKey: Metrics.Counter]>([:])
    let inFlightGauge = Gauge(label: "gc_engine_in_flight_requests")
    let definitionsVersion = Gauge(label: "gc_engine_definitions_version")
    let redisUp = Gauge(label: "gc_engine_redis_up")
    let redisPool = RedisPoolMetrics(prefix: "gc_engine")
    let draining = Gauge(label: "gc_engine_draining")
    /// Client connections switched to another protocol (WebSocket) by their backend, sampled each second.
    let activeTunnels = Gauge(label: "gc_engine_active_tunnels")

    /// Requests and errors so far, and a window of recent latencies, for `/health` (the node agent reads
    /// them to report load): one per ``ThreadShard``, so the event loops do not share a lock per request;
    /// `/health` merges them.
    private let windows: [WindowShard] = (0..<ThreadShard.count).map { _ in WindowShard() }
    private let inFlightCount = Atomic<Int>(0)

    private final class WindowShard: Sendable {
        let window = Mutex(LatencyWindow())
    }

    struct LatencyWindow {
        var samples = [Double](repeating: 0, count: 2048)
        var next = 0
        var filled = 0
        var requests = 0
        var errors = 0
    }

    /// The metrics of `api` for a request without a route (each route carries its own, ``APIRoute/metrics``).
    func api(_ id: String) -> API {
        apis.withLockedValue { cache in
            if let api = cache[id] { return api }
            let api = API(id)
            cache[id] = api
            return api
        }
    }

    func requestStarted() {
        inFlightGauge.record(inFlightCount.add(1, ordering: .relaxed).newValue)
    }

    var inFlight: Int { max(0, inFlightCount.load(ordering: .relaxed)) }

    func requestFinished(_ api: API, status: Int, duration: TimeAmount) {
        inFlightGauge.record(max(0, inFlightCount.subtract(1, ordering: .relaxed).newValue))
        api.requests[(1...5).contains(status / 100) ? status / 100 - 1 : 5].increment()
        api.latency.recordNanoseconds(duration.nanoseconds)
        let ms = Double(duration.nanoseconds) / 1_000_000
        windows[ThreadShard.index()].window.withLock { w in
            w.samples[w.next] = ms
            w.next = (w.next + 1) % w.samples.count
            w.filled = min(w.filled + 1, w.samples.count)
            w.requests += 1
            if status >= 500 { w.errors += 1 }
        }
    }

    func backendResponded(_ api: API, duration: TimeAmount) {
        api.backendLatency.recordNanoseconds(duration.nanoseconds)
    }

    /// Counts an event by kind and reason: `auth_failure`/`bad_signature`, `rate_limited`/`rate`, `cache`/`hit`.
    func count(_ kind: String, _ reason: String) {
        let counter = reasons.withLockedValue { cache in
            let key = ReasonKey(kind: kind, reason: reason)
            if let c = cache[key] { return c }
            let c = Metrics.Counter(label: "gc_engine_\(kind)_total", dimensions: [("reason", reason)])
            cache[key] = c
            return c
        }
        counter.increment()
    }

    private struct ReasonKey: Hashable {
        var kind: String
        var reason: String
    }

    /// p50 and p99 of recent requests in milliseconds (the last 2,048 of each shard), requests and
    /// errors so far.
    func summary() -> (p50: Double, p99: Double, requests: Int, errors: Int) {
        var samples: [Double] = []
        var requests = 0
        var errors = 0
        for shard in windows {
            shard.window.withLock { w in
                samples.append(contentsOf: w.samples.prefix(w.filled))
                requests += w.requests
                errors += w.errors
            }
        }
        guard !samples.isEmpty else { return (0, 0, requests, errors) }
        samples.sort()
        func q(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count - 1) * p))] }
        return (q(0.5), q(0.99), requests, errors)
    }
}

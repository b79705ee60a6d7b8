import CoreMetrics
import Logging
import Metrics
import Prometheus

/// Process-wide logging and metrics set-up, done once in each executable's `main`.
public enum Telemetry {
    /// The registry `/metrics` renders. Services create their metrics through swift-metrics; in a process
    /// that called ``bootstrap(service:level:format:)`` they land here.
    public static let registry = PrometheusCollectorRegistry()

    /// The level every logger of the process follows; SIGHUP sets it from `log.level`.
    public static let logLevel = LogLevelSetting(.info)

    /// Installs the structured stdout log handler and the Prometheus metrics backend.
    public static func bootstrap(service: String, level: Logger.Level, format: LogFormat) {
        logLevel.level = level
        LoggingSystem.bootstrap { label in
            var handler = StructuredLogHandler(label: label, level: logLevel, format: format)
            handler.metadata["service"] = .string(service)
            return handler
        }
        MetricsSystem.bootstrap(metricsFactory(registry: registry, timers: timers))
    }

    /// The timers `/metrics` renders after the registry's metrics (see ``ShardedTimers``).
    public static let timers = ShardedTimers(buckets: durationBuckets)

    /// Timer (histogram) buckets, 100 µs to 10 s. A gateway's requests mostly take well under a
    /// millisecond: with swift-prometheus's default buckets, which start at 5 ms, every quantile of them
    /// would read as "somewhere under 5 ms".
    public static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// The Prometheus backend, with every timer made in `timers` instead of the registry.
    static func metricsFactory(registry: PrometheusCollectorRegistry, timers: ShardedTimers) -> any MetricsFactory {
        GatewayMetricsFactory(prometheus: PrometheusMetricsFactory(registry: registry), timers: timers)
    }

    /// `\`, `"` and LF escaped with a backslash (and CR, for logs): the content of a quoted logfmt value
    /// or Prometheus label value (whose format has no escape for CR, which it allows as it is). By Unicode
    /// scalar, so a CR LF pair (one `Character`) cannot end a log line or a metric line early.
    static func escapedForQuotes(_ s: String, escapingCR: Bool = true) -> String {
        guard s.utf8.contains(where: { needsEscaping($0) && (escapingCR || $0 != UInt8(ascii: "\r")) }) else { return s }
        var out = String.UnicodeScalarView()
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r" where escapingCR: out.append(contentsOf: "\\r".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// Whether a logfmt value holding this byte has to be escaped.
    static func needsEscaping(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    /// The metrics in Prometheus text format.
    public static func prometheusText() -> [UInt8] {
        var buffer = registry.emitToBuffer()
        timers.emit(into: &buffer)
        return buffer
    }
}

/// swift-prometheus for counters, gauges and recorders; ``ShardedTimers`` for timers.
struct GatewayMetricsFactory: MetricsFactory {
    let prometheus: PrometheusMetricsFactory
    let timers: ShardedTimers

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        prometheus.makeCounter(label: label, dimensions: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        prometheus.makeMeter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        timers.timer(name: label, labels: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }

    func destroyTimer(_ handler: any TimerHandler) {
        if let timer = handler as? ShardedTimer { timers.remove(timer) }
    }
}

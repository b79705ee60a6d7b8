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
        MetricsSystem.bootstrap(metricsFactory(registry: registry))
    }

    /// Timer (histogram) buckets, 100 µs to 10 s. A gateway's requests mostly take well under a
    /// millisecond: with swift-prometheus's default buckets, which start at 5 ms, every quantile of them
    /// would read as "somewhere under 5 ms".
    public static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// The Prometheus backend with ``durationBuckets`` for every timer.
    static func metricsFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = durationBuckets
        return factory
    }

    /// The metrics in Prometheus text format.
    public static func prometheusText() -> [UInt8] {
        registry.emitToBuffer()
    }
}

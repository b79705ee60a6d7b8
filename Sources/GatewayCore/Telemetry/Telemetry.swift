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
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// The metrics in Prometheus text format.
    public static func prometheusText() -> [UInt8] {
        registry.emitToBuffer()
    }
}

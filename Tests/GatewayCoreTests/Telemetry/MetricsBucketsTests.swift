import CoreMetrics
import Prometheus
import Testing

@testable import GatewayCore

@Suite struct MetricsBucketsTests {
    /// Timers resolve sub-millisecond latencies: a 300 µs request is counted from the 500 µs bucket up,
    /// not lumped into a first bucket of 5 ms.
    @Test func timersHaveSubMillisecondBuckets() throws {
        let registry = PrometheusCollectorRegistry()
        let timer = Telemetry.metricsFactory(registry: registry).makeTimer(label: "gc_test_duration_seconds", dimensions: [])
        timer.recordNanoseconds(300_000)
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        var buckets: [(le: Double, count: Int)] = []
        for line in text.split(separator: "\n") where line.hasPrefix("gc_test_duration_seconds_bucket{le=\"") {
            let parts = line.split(separator: "\"")
            let count = try #require(Int(line.split(separator: " ").last ?? ""))
            if parts[1] == "+Inf" { continue }
            buckets.append((try #require(Double(parts[1]), "\(line)"), count))
        }
        #expect(buckets.map(\.le) == Telemetry.durationBuckets.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 })
        #expect(buckets.first?.le == 0.0001 && buckets.last?.le == 10)
        #expect(buckets.filter { $0.count == 1 }.map(\.le) == buckets.map(\.le).filter { $0 >= 0.0005 })
        #expect(text.contains("gc_test_duration_seconds_count 1"))
    }
}

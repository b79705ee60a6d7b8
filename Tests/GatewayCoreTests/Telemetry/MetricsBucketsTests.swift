import CoreMetrics
import Dispatch
import Prometheus
import Testing

@testable import GatewayCore

@Suite struct MetricsBucketsTests {
    /// The buckets of one rendered timer: `le` (nil for `+Inf`) and cumulative count, then sum and count.
    func parse(_ text: String, name: String, labels: String) throws -> (buckets: [(le: Double?, count: Int)], sum: Double, count: Int) {
        var buckets: [(le: Double?, count: Int)] = []
        var sum = -1.0
        var count = -1
        let prefix = labels.isEmpty ? "" : labels + ","
        for line in text.split(separator: "\n") {
            let value = String(line.split(separator: " ").last ?? "")
            if line.hasPrefix("\(name)_bucket{\(prefix)le=\"") {
                let afterLe = line.split(separator: "le=\"").last ?? ""
                let le = String(afterLe.prefix(while: { $0 != "\"" }))
                let bound: Double? = le == "+Inf" ? nil : Double(le)
                #expect(le == "+Inf" || bound != nil, "\(line)")
                buckets.append((bound, try #require(Int(value), "\(line)")))
            } else if line.hasPrefix("\(name)_sum\(labels.isEmpty ? "" : "{\(labels)}") ") {
                sum = try #require(Double(value))
            } else if line.hasPrefix("\(name)_count\(labels.isEmpty ? "" : "{\(labels)}") ") {
                count = try #require(Int(value))
            }
        }
        return (buckets, sum, count)
    }

    /// Timers resolve sub-millisecond latencies: a 300 µs request is counted from the 500 µs bucket up,
    /// not lumped into a first bucket of 5 ms; the rendering is a Prometheus histogram.
    @Test func timersHaveSubMillisecondBuckets() throws {
        let timers = ShardedTimers(buckets: Telemetry.durationBuckets)
        let factory = Telemetry.metricsFactory(registry: PrometheusCollectorRegistry(), timers: timers)
        factory.makeTimer(label: "gc_test_duration_seconds", dimensions: []).recordNanoseconds(300_000)
        var buffer: [UInt8] = []
        timers.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(text.hasPrefix("# TYPE gc_test_duration_seconds histogram\n"), "\(text)")
        let parsed = try parse(text, name: "gc_test_duration_seconds", labels: "")
        let bounds = Telemetry.durationBuckets.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        #expect(parsed.buckets.map(\.le) == bounds + [nil])
        #expect(parsed.buckets.first?.le == 0.0001 && parsed.buckets.dropLast().last?.le == 10)
        #expect(parsed.buckets.filter { $0.count == 1 }.map(\.le) == (bounds.filter { $0 >= 0.0005 } + [nil]))
        #expect(parsed.count == 1 && abs(parsed.sum - 0.0003) < 1e-12)
    }

    /// Recordings from many threads at once all count, in the right buckets (cumulative, `le` inclusive),
    /// with the right sum; one `# TYPE` line per name whatever its label sets; label values escaped; a
    /// destroyed timer is no longer rendered, and the same name and labels give the same timer.
    @Test func shardedTimersCountEveryRecordingAcrossThreads() throws {
        let timers = ShardedTimers(buckets: [.milliseconds(1), .milliseconds(10)])
        let factory = Telemetry.metricsFactory(registry: PrometheusCollectorRegistry(), timers: timers)
        let a = factory.makeTimer(label: "gc_test_seconds", dimensions: [("api", "a")])
        let b = factory.makeTimer(label: "gc_test_seconds", dimensions: [("api", "q\"\\\n")])
        #expect(a === factory.makeTimer(label: "gc_test_seconds", dimensions: [("api", "a")]))
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            for n in 0..<1_000 {
                a.recordNanoseconds(n % 2 == 0 ? 1_000_000 : 5_000_000)  // exactly 1 ms (le inclusive), then 5 ms
                if i == 0 { b.recordNanoseconds(20_000_000) }
            }
        }
        var buffer: [UInt8] = []
        timers.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE") } == ["# TYPE gc_test_seconds histogram"], "\(text)")
        let parsedA = try parse(text, name: "gc_test_seconds", labels: "api=\"a\"")
        #expect(parsedA.buckets.map(\.count) == [4_000, 8_000, 8_000], "\(text)")
        #expect(parsedA.count == 8_000 && abs(parsedA.sum - 24.0) < 1e-9)
        #expect(text.contains("gc_test_seconds_count{api=\"q\\\"\\\\\\n\"} 1000"), "\(text)")
        factory.destroyTimer(b)
        var after: [UInt8] = []
        timers.emit(into: &after)
        #expect(!String(decoding: after, as: UTF8.self).contains("q\\\""))
    }
}

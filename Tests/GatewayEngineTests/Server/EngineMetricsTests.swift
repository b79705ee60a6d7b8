import Foundation
import NIOCore
import Testing

@testable import GatewayEngine

@Suite struct EngineMetricsTests {
    /// Requests finished on several threads (so in several shards of the latency window) all reach the
    /// `/health` summary: counts, errors and percentiles over every shard.
    @Test func summaryMergesEveryThreadsWindow() {
        let metrics = EngineMetrics()
        let api = metrics.api("orders")
        #expect(metrics.summary() == (0, 0, 0, 0))
        let group = DispatchGroup()
        for thread in 0..<4 {
            group.enter()
            Thread {
                // Thread t records 1...25 ms plus 100·t, and one 503.
                for ms in 1...25 {
                    metrics.requestStarted()
                    metrics.requestFinished(api, status: ms == 25 ? 503 : 200, duration: .milliseconds(Int64(ms + 100 * thread)))
                }
                group.leave()
            }.start()
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        let summary = metrics.summary()
        #expect(summary.requests == 100)
        #expect(summary.errors == 4)
        // 100 samples: 1–25, 101–125, 201–225, 301–325 ms. The median sits between the second and third
        // thread's; the 99th percentile in the last thread's.
        #expect(summary.p50 == 125)
        #expect(summary.p99 == 324)
        #expect(metrics.inFlight == 0)
    }
}

import GatewayTesting
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// API definitions written through one engine's admin API reach every engine sharing the Redis, and a
    /// change is swapped in without failing a request.
    @Suite struct DefinitionSync {
        /// A definition created through engine 1 is served by engine 2 within 1 s; a target change made
        /// through engine 2 reaches engine 1 within 1 s; both then report the same definitions version;
        /// deactivation and deletion reach the other engine within 1 s too.
        @Test func changeThroughOneEngineReachesTheOtherWithinOneSecond() async throws {
            try await withBackends(["old", "new"]) { backends in
                try await withEngines(count: 2) { cluster in
                    let (one, two) = (cluster.engines[0], cluster.engines[1])
                    #expect(try await two.send(.GET, "/sync/x").status == 404)

                    try await cluster.putAPI(apiJSON("sync", path: "/sync", targets: [backends[0].port]), through: one, waitForAll: false)
                    let reached = ContinuousClock.now
                    try await waitUntil("engine 2 to route /sync", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/sync/x").backend == "old"
                    }
                    let firstDelay = ContinuousClock.now - reached

                    try await cluster.putAPI(apiJSON("sync", path: "/sync", targets: [backends[1].port]), through: two, waitForAll: false)
                    let changed = ContinuousClock.now
                    try await waitUntil("engine 1 to forward /sync to the new target", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await one.send(.GET, "/sync/x").backend == "new"
                    }
                    let secondDelay = ContinuousClock.now - changed
                    #expect(firstDelay < .seconds(1) && secondDelay < .seconds(1))

                    try await waitUntil("both engines to report the same version", timeout: .seconds(1)) {
                        let a = try await one.admin(.GET, "/health").string("defs_version")
                        let b = try await two.admin(.GET, "/health").string("defs_version")
                        return a != nil && a == b
                    }

                    // Deactivating and deleting travel the same way.
                    try await cluster.putAPI(
                        apiJSON("sync", path: "/sync", targets: [backends[1].port], extra: #""active":false"#), through: one, waitForAll: false)
                    try await waitUntil("engine 2 to stop routing the inactive API", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/sync/x").status == 404
                    }
                    try await cluster.putAPI(apiJSON("sync", path: "/sync", targets: [backends[1].port]), through: one)
                    #expect(try await two.send(.GET, "/sync/x").status == 200)
                    let deleted = try await two.admin(.DELETE, "/apis/sync")
                    #expect(deleted.status == 200)
                    try await waitUntil("engine 1 to forget the deleted API", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await one.send(.GET, "/sync/x").status == 404
                    }
                    #expect(try await one.admin(.GET, "/apis/sync").status == 404)
                }
            }
        }

        /// While requests flow through both engines, the API's targets are switched from A to B: no
        /// request fails, and once the change is loaded everything goes to B.
        @Test func definitionChangeUnderLoadFailsNoRequest() async throws {
            try await withBackends(["a", "b"]) { backends in
                // A little latency keeps requests in flight on the old table while the new one is swapped in.
                backends[0].setDelay(.milliseconds(2))
                try await withEngines(count: 2) { cluster in
                    try await cluster.putAPI(apiJSON("live", path: "/live", targets: [backends[0].port]))
                    let tally = Shared<(ok: [String: Int], failures: [String], sent: Int)>(([:], [], 0))
                    let limit = 800
                    let deadline = ContinuousClock.now + .seconds(10)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for worker in 0..<6 {
                            let engine = cluster.engines[worker % 2]
                            group.addTask {
                                try await TestHTTP.withConnection(port: engine.port, timeout: .seconds(15)) { connection in
                                    while ContinuousClock.now < deadline {
                                        let go = tally.withLock { t -> Bool in
                                            guard t.sent < limit else { return false }
                                            t.sent += 1
                                            return true
                                        }
                                        guard go else { return }
                                        do {
                                            let response = try await connection.send(.GET, "/live/item")
                                            tally.withLock { t in
                                                if response.status == 200, let backend = response.backend {
                                                    t.ok[backend, default: 0] += 1
                                                } else {
                                                    t.failures.append("\(response.status) \(response.text)")
                                                }
                                            }
                                        } catch {
                                            tally.withLock { $0.failures.append("\(error)") }
                                            return
                                        }
                                    }
                                }
                            }
                        }
                        // Switch once some traffic has gone to A.
                        try await waitUntil("load to start", timeout: .seconds(5)) { tally.withLock { $0.sent } >= 200 }
                        try await cluster.putAPI(apiJSON("live", path: "/live", targets: [backends[1].port]))
                        try await group.waitForAll()
                    }
                    let result = tally.value
                    #expect(result.failures.isEmpty, "failed: \(result.failures.prefix(5))")
                    #expect(result.ok.values.reduce(0, +) == result.sent, "every request answered 200: \(result.ok) of \(result.sent)")
                    #expect((result.ok["a"] ?? 0) >= 150 && (result.ok["b"] ?? 0) > 0, "traffic went to A, then B: \(result.ok)")

                    backends[0].resetCounts()
                    for i in 0..<20 {
                        #expect(try await cluster.engines[i % 2].send(.GET, "/live/after").backend == "b")
                    }
                    #expect(backends[0].requestCount == 0, "A gets nothing after the switch")
                }
            }
        }
    }
}

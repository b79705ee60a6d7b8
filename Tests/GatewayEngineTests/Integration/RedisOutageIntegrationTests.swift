import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// What the engine does while its Redis is down, and after it comes back.
    @Suite struct RedisOutage {
        /// With Redis stopped, a keyed API answers 503 with a JSON error (never 401/403), a keyless API
        /// keeps answering 200 from the last-known definitions, a fail-open rate limit lets calls through
        /// and a fail-closed one answers 503, and `/ready` is 503; once Redis is back (with its saved
        /// data), keyed calls work again and the engine is ready.
        @Test func keyedAPIsGet503AndKeylessAPIsKeepServingWhileRedisIsDown() async throws {
            try await withBackends(["keyed", "free"]) { backends in
                try await withEngines(settings: ["redis.connectTimeout": "200ms", "redis.commandTimeout": "500ms", "ratelimit.redisTimeout": "250ms"])
                { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(apiJSON("keyed", path: "/keyed", targets: [backends[0].port], extra: #""auth":{"mode":"api_key"}"#))
                    try await cluster.putAPI(apiJSON("free", path: "/free", targets: [backends[1].port]))
                    try await cluster.putAPI(
                        apiJSON(
                            "open", path: "/open", targets: [backends[1].port],
                            extra: #""rate_limit":{"rate":100,"period_seconds":1,"burst":100,"fail_mode":"open"}"#))
                    try await cluster.putAPI(
                        apiJSON(
                            "closed", path: "/closed", targets: [backends[1].port],
                            extra: #""rate_limit":{"rate":100,"period_seconds":1,"burst":100,"fail_mode":"closed"}"#))
                    let (key, _) = try await cluster.createKey(#"{"name":"outage"}"#)
                    #expect(try await engine.send(.GET, "/keyed/a", headers: [("X-API-Key", key)]).status == 200)
                    #expect(try await engine.send(.GET, "/free/a").status == 200)
                    #expect(try await engine.admin(.GET, "/ready").status == 200)

                    // Persist the data set so the restarted server has the key again, then stop it.
                    let client = RedisClient(configuration: cluster.redis.configuration(), logger: .forTesting())
                    _ = try await client.send("SAVE")
                    await client.shutdown()
                    await cluster.redis.stop()

                    let seen = Shared<[Int]>([])
                    try await waitUntil("the keyed API to answer 503", timeout: .seconds(5), interval: .milliseconds(20)) {
                        let status = try await engine.send(.GET, "/keyed/a", headers: [("X-API-Key", key)]).status
                        seen.withLock { $0.append(status) }
                        return status == 503
                    }
                    let outage = try await engine.send(.GET, "/keyed/b", headers: [("X-API-Key", key)])
                    #expect(outage.status == 503)
                    #expect(outage.header("Content-Type") == "application/json")
                    #expect(outage.string("error") == "authentication is temporarily unavailable")
                    #expect(outage.string("request_id") == outage.header("X-Request-ID"))
                    #expect(
                        try await engine.send(.GET, "/keyed/c", headers: [("X-API-Key", "gk_" + String(repeating: "B", count: 43))]).status == 503,
                        "an unknown key cannot be told from a valid one without Redis: 503, not 401")
                    #expect(!seen.value.contains { $0 == 401 || $0 == 403 }, "statuses while Redis went away: \(seen.value)")

                    try await waitUntil("/ready to say 503", timeout: .seconds(5), interval: .milliseconds(50)) {
                        try await engine.admin(.GET, "/ready").status == 503
                    }
                    let notReady = try await engine.admin(.GET, "/ready")
                    #expect(notReady.string("error")?.contains("redis") == true)
                    for i in 0..<10 {
                        let free = try await engine.send(.GET, "/free/\(i)")
                        #expect(free.status == 200)
                        #expect(free.backend == "free")
                    }
                    let failOpen = try await engine.send(.GET, "/open/x")
                    #expect(failOpen.status == 200, "a fail-open limit falls back to the local limiter")
                    #expect(failOpen.header("X-RateLimit-Limit") != nil)
                    let failClosed = try await engine.send(.GET, "/closed/x")
                    #expect(failClosed.status == 503, "a fail-closed limit refuses")
                    #expect(failClosed.string("error") == "rate limiting is temporarily unavailable")

                    try await cluster.redis.restart()
                    try await waitUntil("keyed calls to work again", timeout: .seconds(5), interval: .milliseconds(20)) {
                        try await engine.send(.GET, "/keyed/a", headers: [("X-API-Key", key)]).status == 200
                    }
                    try await waitUntil("/ready to say 200", timeout: .seconds(5), interval: .milliseconds(50)) {
                        try await engine.admin(.GET, "/ready").status == 200
                    }
                    #expect(try await engine.send(.GET, "/free/after").status == 200)
                    #expect(try await engine.send(.GET, "/closed/after").status == 200)
                }
            }
        }

        /// Redis restarted without its data: the engines serving a seed file apply it again (the API
        /// answers again without an engine restart); deleting every API through the admin API is not undone.
        @Test func seedFileIsAppliedAgainWhenRedisComesBackEmpty() async throws {
            try await withBackends(["seeded"]) { backends in
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("seed-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                let seed = directory.appendingPathComponent("apis.yaml").path
                try "apis:\n  - {id: seeded, name: Seeded, listen_path: /seeded, targets: [{url: \"http://127.0.0.1:\(backends[0].port)\"}]}\n"
                    .write(toFile: seed, atomically: true, encoding: .utf8)
                try await withEngines(count: 2, settings: ["apis.seedFile": seed, "redis.connectTimeout": "200ms", "redis.commandTimeout": "500ms"]) {
                    cluster in
                    func everyEngineAnswers(_ path: String, _ status: Int) async throws -> Bool {
                        for engine in cluster.engines where try await engine.send(.GET, path).status != status { return false }
                        return true
                    }
                    try await waitUntil("the seeded API to answer", timeout: .seconds(10)) { try await everyEngineAnswers("/seeded/a", 200) }
                    let epochs = Dictionary(
                        uniqueKeysWithValues: cluster.engines.map {
                            (ObjectIdentifier($0.engine), $0.engine.holder.snapshot.storeVersion?.epoch)
                        })
                    await cluster.redis.stop()
                    try await cluster.redis.restart()  // no persistence: an empty data set
                    // Redis has it again (written by the engines' seed, not left over in a table)...
                    try await waitUntil("the seed to be applied again", timeout: .seconds(15), interval: .milliseconds(50)) {
                        try await cluster.first.admin(.GET, "/apis/seeded").status == 200
                    }
                    // ...and every engine serves it from a table loaded since (the new store has a new epoch).
                    for engine in cluster.engines {
                        try await waitUntil("the seeded API to answer again", timeout: .seconds(10), interval: .milliseconds(50)) {
                            let epoch = engine.engine.holder.snapshot.storeVersion?.epoch
                            guard epoch != nil, epoch != epochs[ObjectIdentifier(engine.engine)] else { return false }
                            return try await engine.send(.GET, "/seeded/b").status == 200
                        }
                    }
                    // Deleted on purpose: stays deleted (the epoch survives the delete).
                    let deleted = try await cluster.first.admin(.DELETE, "/apis/seeded")
                    #expect(deleted.status == 200, "\(deleted)")
                    try await waitUntil("the deletion to reach every engine", timeout: .seconds(5)) { try await everyEngineAnswers("/seeded/c", 404) }
                    try await Task.sleep(for: .seconds(2))  // two monitor rounds: nothing re-seeds
                    #expect(try await cluster.first.send(.GET, "/seeded/d").status == 404)
                }
            }
        }
    }
}

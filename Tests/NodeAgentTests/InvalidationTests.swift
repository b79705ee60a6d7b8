import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOHTTP1
import Testing

@testable import NodeAgent

/// Cluster-wide cache invalidations reach every engine, in order, and are never lost.
@Suite struct InvalidationTests {
    let keys = ClusterKeys()

    /// The record's last applied invalidation id.
    func lastApplied(_ redis: RedisClient, _ node: String) async throws -> RedisStreamID? {
        try await nodeRecord(redis, node)[NodeRecord.Field.lastInvalidation.rawValue].flatMap(RedisStreamID.init)
    }

    /// Entries published while the agent is stopped are applied, in order, when it starts again from its
    /// state file; nothing applied before is applied twice.
    @Test func invalidationsAddedWhileStoppedAreAppliedInOrderAfterRestart() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    let publisher = InvalidationPublisher(redis: redis, keys: keys)
                    let settings = try await readSettings(agentOverrides(redis: server, engine: engine, node: "n1", directory: directory))
                    let first = try await publisher.publish(.api("orders"))
                    try await withAgent(settings) { _ in
                        // No state file yet: one full purge to start from a known point, at the stream's end.
                        try await waitUntil("the first start to catch up") {
                            try await lastApplied(redis, "n1") == RedisStreamID(first)
                        }
                        let id = try await publisher.publish(.key("GET /orders/1"))
                        try await waitUntil("the entry to be applied") { try await lastApplied(redis, "n1") == RedisStreamID(id) }
                    }
                    #expect(engine.purges == [.all, FakeEngine.Purge(scope: "key", key: "GET /orders/1")])

                    let later: [InvalidationScope] = [.api("users"), .prefix("/orders/v2", api: "orders"), .key("GET /a"), .all, .prefix("/img")]
                    var ids: [String] = []
                    for scope in later { ids.append(try await publisher.publish(scope)) }
                    try await withAgent(settings) { _ in
                        try await waitUntil("the restarted agent to catch up") {
                            try await lastApplied(redis, "n1") == RedisStreamID(ids.last!)
                        }
                    }
                    #expect(
                        Array(engine.purges.dropFirst(2)) == [
                            FakeEngine.Purge(scope: "api", api: "users"), FakeEngine.Purge(scope: "prefix", api: "orders", prefix: "/orders/v2"),
                            FakeEngine.Purge(scope: "key", key: "GET /a"), .all, FakeEngine.Purge(scope: "prefix", prefix: "/img"),
                        ])
                    let state = try String(contentsOfFile: settings.stateFile, encoding: .utf8)
                    #expect(state.contains(ids.last!))
                }
            }
        }
    }

    /// When entries after the agent's last applied id were trimmed away while it was stopped, it purges the
    /// whole cache (and warns) instead of applying what is left and missing the rest.
    @Test func trimmedAwayEntriesLeadToAFullPurge() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    let publisher = InvalidationPublisher(redis: redis, keys: keys)
                    let settings = try await readSettings(agentOverrides(redis: server, engine: engine, node: "n1", directory: directory))
                    try await InvalidationStateFile(path: settings.stateFile, node: "n1").save(
                        RedisStreamID(try await publisher.publish(.api("seen"))) ?? .zero)
                    var ids: [String] = []
                    for n in 0..<5 { ids.append(try await publisher.publish(.key("GET /item/\(n)"))) }
                    try await redis.send("XTRIM", .string(keys.invalidations), "MAXLEN", 2)
                    let logs = InMemoryLogHandler.Store()
                    try await withAgent(settings, logger: logs.logger(label: "node-agent", level: .info)) { _ in
                        try await waitUntil("the agent to catch up") { try await lastApplied(redis, "n1") == RedisStreamID(ids.last!) }
                    }
                    #expect(engine.purges == [.all])
                    #expect(logs.entries.contains { $0.level == .warning && $0.message.contains("purging the whole engine cache") })
                    #expect(try await InvalidationStateFile(path: settings.stateFile, node: "n1").load() == RedisStreamID(ids.last!))
                }
            }
        }
    }

    /// While the engine is down an entry stays pending and is retried; once the engine is back it is
    /// applied, followed by the ones behind it, none skipped.
    @Test func engineDownKeepsTheEntryPendingUntilItIsBack() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    let publisher = InvalidationPublisher(redis: redis, keys: keys)
                    let settings = try await readSettings(agentOverrides(redis: server, engine: engine, node: "n1", directory: directory))
                    try await withAgent(settings) { running in
                        try await waitUntil("the first start's full purge") { engine.purges == [.all] }
                        try await waitUntil("the node to register") { try await lastApplied(redis, "n1") == .zero }
                        engine.failPurges(status: .internalServerError)
                        let a = try await publisher.publish(.api("a"))
                        try await waitUntil("retries") { engine.purgeAttempts >= 4 }
                        await engine.stop()
                        let b = try await publisher.publish(.api("b"))
                        try await waitUntil("the stuck entry to show") { running.agent.currentStatus.invalidationError != nil }
                        #expect(try await lastApplied(redis, "n1") == .zero)
                        #expect(running.agent.currentStatus.pendingInvalidations >= 1)
                        engine.failPurges(status: nil)
                        try await engine.start()
                        try await waitUntil("both to be applied") { try await lastApplied(redis, "n1") == RedisStreamID(b) }
                        _ = a
                    }
                    #expect(engine.purges == [.all, FakeEngine.Purge(scope: "api", api: "a"), FakeEngine.Purge(scope: "api", api: "b")])
                }
            }
        }
    }

    /// `waitForApplied` reports a node that has not applied the entry, and returns complete only once every
    /// live node has.
    @Test func waitForAppliedReturnsOnlyAfterEveryLiveNodeApplied() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { fast in
                try await withFakeEngine { slow in
                    try await withTemporaryDirectory { directory in
                        let publisher = InvalidationPublisher(redis: redis, keys: keys)
                        // A lease far longer than the test: a heartbeat starved on a loaded machine must not
                        // let b's record expire while it is held back (a node gone is no laggard). The
                        // agents still heartbeat every 200 ms.
                        func settings(_ node: String, _ engine: FakeEngine) async throws -> AgentSettings {
                            var overrides = agentOverrides(redis: server, engine: engine, node: node, directory: directory)
                            overrides["heartbeat.lease"] = "30s"
                            return try await readSettings(overrides)
                        }
                        let a = try await settings("a", fast)
                        let b = try await settings("b", slow)
                        try await withAgent(a) { _ in
                            try await withAgent(b) { _ in
                                // Both registered, listed in the node index, and past their first start's
                                // full purge, before anything is published.
                                try await waitUntil("both nodes to register and be live", timeout: .seconds(30)) {
                                    let members = try await redis.send("SMEMBERS", .string(keys.nodes)).array?.compactMap(\.string)
                                    let applied = (try await lastApplied(redis, "a"), try await lastApplied(redis, "b"))
                                    let live = try await publisher.progress(of: .zero)
                                    return Set(members ?? []) == ["a", "b"] && applied.0 == .zero && applied.1 == .zero
                                        && live.applied == ["a", "b"] && fast.purges == [.all] && slow.purges == [.all]
                                }
                                slow.failPurges(status: .serviceUnavailable)
                                let attemptsBefore = slow.purgeAttempts
                                let id = try await publisher.publish(.prefix("/orders"))
                                // The intermediate state, really reached: a applied it, b tried and failed.
                                try await waitUntil("a to apply the entry and b to fail at it", timeout: .seconds(30)) {
                                    try await lastApplied(redis, "a") == RedisStreamID(id) && slow.purgeAttempts > attemptsBefore
                                }
                                let early = try await publisher.waitForApplied(id: id, timeout: .milliseconds(600))
                                #expect(!early.isComplete)
                                #expect(early.applied == ["a"], "\(early)")
                                #expect(early.laggards.map(\.node) == ["b"], "\(early)")
                                #expect(early.laggards.first?.lastApplied == "0-0")

                                slow.failPurges(status: nil)
                                let done = try await publisher.waitForApplied(id: id, timeout: .seconds(30))
                                #expect(done.isComplete)
                                #expect(done.applied == ["a", "b"])
                                // Returned only after both engines really purged.
                                #expect(fast.purges.last == FakeEngine.Purge(scope: "prefix", prefix: "/orders"))
                                #expect(slow.purges.last == FakeEngine.Purge(scope: "prefix", prefix: "/orders"))
                            }
                        }
                        let none = try await publisher.waitForApplied(id: try await publisher.publish(.all), timeout: .seconds(10))
                        #expect(none.isComplete && none.applied.isEmpty)
                    }
                }
            }
        }
    }

    /// On a three-master Redis Cluster (`redis.cluster: true`) two agents register (their records, the
    /// node index and the invalidation stream on different masters), and invalidations published there
    /// reach both engines in order; `waitForApplied` sees both apply them.
    @Test func onRedisCluster() async throws {
        try await withRedisCluster { cluster in
            let redis = RedisClient(configuration: cluster.configuration(), logger: Logger(label: "test.publisher"))
            defer { Task { await redis.shutdown() } }
            try await withFakeEngine { first in
                try await withFakeEngine { second in
                    try await withTemporaryDirectory { directory in
                        func settings(_ node: String, _ engine: FakeEngine) async throws -> AgentSettings {
                            var overrides = agentOverrides(redis: cluster.nodes[0], engine: engine, node: node, directory: directory)
                            overrides["redis.cluster"] = "true"
                            overrides["redis.clusterSeeds"] = cluster.nodes.dropFirst().map { $0.url.address }.joined(separator: ",")
                            overrides["heartbeat.lease"] = "30s"
                            return try await readSettings(overrides)
                        }
                        let publisher = InvalidationPublisher(redis: redis, keys: keys)
                        try await withAgent(try await settings("a", first)) { _ in
                            try await withAgent(try await settings("b", second)) { _ in
                                try await waitUntil("both nodes to register and be live", timeout: .seconds(30)) {
                                    let members = try await redis.send("SMEMBERS", .string(keys.nodes)).array?.compactMap(\.string)
                                    let live = try await publisher.progress(of: .zero)
                                    return Set(members ?? []) == ["a", "b"] && live.applied == ["a", "b"]
                                        && first.purges == [.all] && second.purges == [.all]
                                }
                                _ = try await publisher.publish(.api("orders"))
                                _ = try await publisher.publish(.prefix("/catalog"))
                                let last = try await publisher.publish(.all)
                                let done = try await publisher.waitForApplied(id: last, timeout: .seconds(30))
                                #expect(done.isComplete && done.applied == ["a", "b"], "\(done)")
                                let expected: [FakeEngine.Purge] = [
                                    .init(scope: "all"), .init(scope: "api", api: "orders"), .init(scope: "prefix", prefix: "/catalog"),
                                    .init(scope: "all"),
                                ]
                                #expect(first.purges == expected, "\(first.purges)")
                                #expect(second.purges == expected, "\(second.purges)")
                                var holding = 0
                                for admin in cluster.admins where (try await admin.send("DBSIZE").int ?? 0) > 0 { holding += 1 }
                                #expect(holding >= 2, "the agents' keys are on \(holding) master(s)")
                            }
                        }
                    }
                }
            }
        }
    }
}

import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import NodeAgent

/// Registration under a lease, health reporting, drain and reload, against a real Redis and a fake engine.
@Suite struct NodeRegistrationTests {
    /// A started agent registers its node with region, zone, address, weight and labels, under a lease,
    /// lists it in the node index and announces `node_up`.
    @Test func registrationIsVisibleWithRegionAndZone() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    let settings = try await readSettings(agentOverrides(redis: server, engine: engine, node: "n1", directory: directory))
                    try await withEventLog(server) { events in
                        try await withAgent(settings) { _ in
                            try await waitUntil("the node to register") {
                                let members = try await redis.send("SMEMBERS", .string(ClusterKeys().nodes)).array?.compactMap(\.string)
                                return try await nodeRecord(redis, "n1", has: .health, "up") && members == ["n1"]
                            }
                            let record = try #require(NodeRecord(fields: try await nodeRecord(redis, "n1")))
                            #expect(record.region == "eu-west" && record.zone == "eu-west-1a")
                            #expect(record.address == "10.0.0.7" && record.port == 8443 && record.weight == 40)
                            #expect(record.labels == "rack=r7,tier=gold")
                            #expect(record.state == .up)
                            let ttl = try #require(try await redis.send("PTTL", .string(ClusterKeys().node("n1"))).int)
                            #expect(ttl > 0 && ttl <= 600)
                            try await waitUntil("node_up") { await events.events.contains(.nodeUp(node: "n1")) }
                        }
                    }
                }
            }
        }
    }

    /// An engine that stops answering is marked down at the next probe, with the reason; one that cannot
    /// reach Redis is degraded; load comes from its health report.
    @Test func engineHealthAndLoadAreReported() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    let settings = try await readSettings(agentOverrides(redis: server, engine: engine, node: "n1", directory: directory))
                    engine.setInFlight(7)
                    try await withAgent(settings) { _ in
                        try await waitUntil("the in-flight count") { try await nodeRecord(redis, "n1", has: .inFlight, "7") }
                        try await waitUntil("a request rate") {
                            engine.count(requests: 10, errors: 1)
                            let record = try await nodeRecord(redis, "n1")
                            let rate = Double(record[NodeRecord.Field.requestsPerSecond.rawValue] ?? "") ?? 0
                            let errors = Double(record[NodeRecord.Field.errorRate.rawValue] ?? "") ?? 0
                            return rate > 0 && abs(errors - 0.1) < 1e-6
                        }
                        engine.setRedis("down")
                        // Each state is polled for together with its reason: on a loaded machine a probe can
                        // time out (150 ms here), and one read could land on that "not answering" heartbeat.
                        let reason = NodeRecord.Field.healthReason.rawValue
                        try await waitUntil("degraded because the engine cannot reach redis", timeout: .seconds(20)) {
                            let record = try await nodeRecord(redis, "n1")
                            return record[NodeRecord.Field.health.rawValue] == "degraded" && record[reason] == "engine cannot reach redis"
                        }
                        engine.setRedis("up")
                        engine.setNotReady("loading definitions")
                        try await waitUntil("down while not ready, with the reason", timeout: .seconds(20)) {
                            let record = try await nodeRecord(redis, "n1")
                            return record[NodeRecord.Field.state.rawValue] == "down" && record[reason] == "engine not ready: loading definitions"
                        }
                        engine.setNotReady(nil)
                        try await waitUntil("up again") { try await nodeRecord(redis, "n1", has: .state, "up") }
                        await engine.stop()
                        let clock = ContinuousClock()
                        let stopped = clock.now
                        try await waitUntil("down once the engine is gone") { try await nodeRecord(redis, "n1", has: .health, "down") }
                        // Within about one heartbeat (200 ms here) plus the probe.
                        #expect(clock.now - stopped < .seconds(1))
                        #expect(try await nodeRecord(redis, "n1")[NodeRecord.Field.healthReason.rawValue]?.hasPrefix("engine not answering") == true)
                    }
                }
            }
        }
    }

    /// Redis restarted mid-run (losing every key) and the agent, still the same process, registers the
    /// node again, under a lease, within about a heartbeat.
    @Test func redisRestartReregistersWithoutRestartingTheAgent() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    let settings = try await readSettings(agentOverrides(redis: server, engine: engine, node: "n1", directory: directory))
                    try await withAgent(settings) { running in
                        try await waitUntil("the node to register") { try await nodeRecord(redis, "n1", has: .state, "up") }
                        try await redis.set("sentinel", to: "before the restart")
                        try await server.restart()
                        // Everything was lost (the agent may already have written its record again).
                        #expect(try await redis.get("sentinel") == nil)
                        // The record and the index entry are two commands: wait for both.
                        try await waitUntil("the node to register again", timeout: .seconds(5)) {
                            let members = try await redis.send("SMEMBERS", .string(ClusterKeys().nodes)).array?.compactMap(\.string)
                            return try await nodeRecord(redis, "n1", has: .state, "up") && members == ["n1"]
                        }
                        let ttl = try #require(try await redis.send("PTTL", .string(ClusterKeys().node("n1"))).int)
                        #expect(ttl > 0)
                        #expect(running.agent.currentStatus.redisReachable)
                    }
                }
            }
        }
    }

    /// A drain whose engine never gets to zero requests in flight ends at the drain deadline: the node is
    /// deregistered anyway, having stayed `draining` until then.
    @Test func drainGivesUpAtTheDeadline() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    var overrides = agentOverrides(redis: server, engine: engine, node: "n1", directory: directory)
                    overrides["drain.deadline"] = "700ms"
                    // An engine that does not answer a probe in time has nothing to wait for and ends the
                    // drain at once: on a loaded machine the 150 ms default here timed out and the drain
                    // ended after 0.5 s. The fake engine does answer, so give it time to (below the
                    // heartbeat, as the configuration requires).
                    overrides["heartbeat.interval"] = "500ms"
                    overrides["engine.probeTimeout"] = "450ms"
                    let settings = try await readSettings(overrides)
                    engine.setInFlight(5)
                    let running = RunningAgent.start(settings)
                    try await waitUntil("the node to register") { try await nodeRecord(redis, "n1", has: .state, "up") }
                    let clock = ContinuousClock()
                    let started = clock.now
                    try await running.stop()
                    let took = clock.now - started
                    #expect(try await nodeRecord(redis, "n1").isEmpty)
                    #expect(took >= .milliseconds(700) && took < .seconds(3), "drain took \(took)")
                    #expect(running.agent.currentStatus.state == .down)
                }
            }
        }
    }

    /// A busy engine that leaves two probes unanswered does not cut the drain short: the agent keeps
    /// waiting for its requests in flight; an engine that stops answering altogether ends the drain
    /// after three unanswered probes, long before the deadline.
    @Test func drainOutlastsAFewUnansweredProbesButNotADeadEngine() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                /// An agent for `node` with a long drain deadline, registered, its engine busy (3 in flight).
                func startRegisteredAgent(_ node: String, directory: String) async throws -> RunningAgent {
                    var overrides = agentOverrides(redis: server, engine: engine, node: node, directory: directory)
                    overrides["drain.deadline"] = "20s"
                    overrides["heartbeat.interval"] = "500ms"
                    overrides["engine.probeTimeout"] = "450ms"
                    let settings = try await readSettings(overrides)
                    engine.setInFlight(3)
                    let running = RunningAgent.start(settings)
                    try await waitUntil("the node to register") { try await nodeRecord(redis, node, has: .state, "up") }
                    return running
                }
                try await withTemporaryDirectory { directory in
                    let running = try await startRegisteredAgent("n1", directory: directory)
                    let before = engine.healthRequests
                    engine.failHealth(count: 2)
                    let stopping = Task { try await running.stop() }
                    // Two failed probes and at least one answered (in flight 3) after them: still draining.
                    try await waitUntil("probes past the failures", timeout: .seconds(20)) { engine.healthRequests >= before + 4 }
                    #expect(try await nodeRecord(redis, "n1", has: .state, "draining"), "a drain must outlast two unanswered probes")
                    engine.setInFlight(0)
                    try await withTimeout(.seconds(20), "the drain to end") { try await stopping.value }
                    #expect(try await nodeRecord(redis, "n1").isEmpty)
                }
                // A dead engine: the drain ends after three unanswered probes, not at the 20 s deadline.
                try await withTemporaryDirectory { directory in
                    let running = try await startRegisteredAgent("n2", directory: directory)
                    engine.failHealth(count: 1_000_000)
                    let clock = ContinuousClock()
                    let started = clock.now
                    try await running.stop()
                    #expect(clock.now - started < .seconds(15), "drain took \(clock.now - started)")
                    #expect(try await nodeRecord(redis, "n2").isEmpty)
                    engine.failHealth(count: 0)
                }
            }
        }
    }

    /// The agent's own admin listener answers `/health` with heartbeat age, Redis state and invalidation
    /// lag, `/ready` once registered, and `/metrics` with its token.
    @Test func adminListenerReportsTheAgentsState() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    let settings = try await readSettings(agentOverrides(redis: server, engine: engine, node: "n1", directory: directory))
                    try await withAgent(settings) { running in
                        let url = try await running.adminURL
                        let client = AdminHTTPClient(timeout: .seconds(2))
                        try await waitUntil("ready") { try await client.request(.GET, url + "/ready").status == .ok }
                        var fields: [String: String] = [:]
                        try await waitUntil("the engine probed up") {
                            let health = try await client.request(.GET, url + "/health")
                            fields = (try JSONSerialization.jsonObject(with: Data(health.body.readableBytesView)) as? [String: String]) ?? [:]
                            return fields["engine_health"] == "up"
                        }
                        #expect(fields["redis"] == "up" && fields["node"] == "n1" && fields["zone"] == "eu-west-1a")
                        #expect(fields["heartbeat_age_ms"].flatMap(Int.init) != nil)
                        #expect(fields["invalidation_lag_ms"] == "0")
                        let metrics = try await client.request(.GET, url + "/metrics", headers: ["Authorization": "Bearer \(agentToken)"])
                        #expect(metrics.status == .ok)
                        await server.stop()
                        try await waitUntil("not ready without redis") {
                            try await client.request(.GET, url + "/ready").status == .serviceUnavailable
                        }
                        try await server.restart()
                        try await waitUntil("ready again") { try await client.request(.GET, url + "/ready").status == .ok }
                        _ = redis
                    }
                }
            }
        }
    }
}

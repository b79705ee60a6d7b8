import Foundation
import GatewayCore
import GatewayTesting
import Testing

@testable import NodeAgent

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What needs the agent as a real process: death by SIGKILL, SIGTERM drain, SIGHUP reload.
@Suite struct AgentProcessTests {
    static func arguments(_ overrides: [String: String]) -> [String] {
        overrides.sorted { $0.key < $1.key }.flatMap { ["--set", "\($0.key)=\($0.value)"] }
    }

    /// A killed agent deregisters nothing, yet its node disappears once the lease (3 heartbeats of 1 s)
    /// runs out.
    @Test func leaseExpiresAfterTheAgentIsKilled() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    var overrides = agentOverrides(redis: server, engine: engine, node: "k1", directory: directory)
                    overrides["heartbeat.interval"] = nil  // the default: 1 s, so the lease is 3 s
                    let agent = try AgentProcess.launch(Self.arguments(overrides), logPath: directory + "/agent.log")
                    try await waitUntil("the node to register", timeout: .seconds(30)) {
                        try await nodeRecord(redis, "k1", has: .state, "up")
                    }
                    let ttl = try #require(try await redis.send("PTTL", .string(ClusterKeys().node("k1"))).int)
                    #expect(ttl > 1000 && ttl <= 3000, "\(agent.logTail())")
                    agent.signal(SIGKILL)
                    _ = try await agent.waitForExit()
                    #expect(agent.process.terminationReason == .uncaughtSignal)
                    let clock = ContinuousClock()
                    let killed = clock.now
                    try await waitUntil("the record to expire", timeout: .milliseconds(3500), interval: .milliseconds(20)) {
                        try await redis.send("EXISTS", .string(ClusterKeys().node("k1"))).int == 0
                    }
                    #expect(clock.now - killed > .milliseconds(1500), "gone before its lease could have run out")
                }
            }
        }
    }

    /// SIGTERM: the node turns `draining` first, stays registered while the engine has requests in
    /// flight, then is deleted and announced `node_down`, and the agent exits 0.
    @Test func sigtermDrainsBeforeDeregistering() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    try await withEventLog(server) { events in
                        let overrides = agentOverrides(redis: server, engine: engine, node: "d1", directory: directory)
                            // A probe the engine does not answer in time ends the drain at once (nothing to
                            // wait for): the 150 ms test default timed out on a loaded machine and the agent
                            // deregistered early. The fake engine does answer; give it time to (the probe
                            // timeout must stay below the heartbeat, so the heartbeat is 500 ms, lease 1.5 s).
                            .merging(["drain.deadline": "20s", "heartbeat.interval": "500ms", "engine.probeTimeout": "450ms"]) { $1 }
                        let agent = try AgentProcess.launch(Self.arguments(overrides), logPath: directory + "/agent.log")
                        try await waitUntil("the node to register", timeout: .seconds(30)) {
                            try await nodeRecord(redis, "d1", has: .state, "up")
                        }
                        engine.setInFlight(3)
                        agent.signal(SIGTERM)
                        try await waitUntil("draining", timeout: .seconds(20)) { try await nodeRecord(redis, "d1", has: .state, "draining") }
                        // The agent keeps polling the engine and keeps the node registered while requests
                        // are in flight (well past a lease of 1.5 s: 30 polls at most every 100 ms are at
                        // least 2.5 s of drain; the heartbeat goes on while draining).
                        // The deadline is only an upper bound for a loaded machine; the record is checked
                        // to be still draining after the polls.
                        let polled = engine.healthRequests
                        try await waitUntil("the agent to poll the engine through a lease", timeout: .seconds(30)) {
                            engine.healthRequests >= polled + 30
                        }
                        #expect(try await nodeRecord(redis, "d1", has: .state, "draining"), "\(agent.logTail())")
                        #expect(agent.process.isRunning)
                        engine.setInFlight(0)
                        try await waitUntil("the record and its index entry to be deleted", timeout: .seconds(20)) {
                            let members = try await redis.send("SMEMBERS", .string(ClusterKeys().nodes)).array ?? []
                            return try await nodeRecord(redis, "d1").isEmpty && members.isEmpty
                        }
                        #expect(try await agent.waitForExit(timeout: .seconds(30)) == 0, "\(agent.logTail())")
                        try await waitUntil("node_down") { await events.events.contains(.nodeDown(node: "d1")) }
                        let published = await events.events
                        let changed = try #require(published.firstIndex(of: .nodeChanged(node: "d1")))
                        let down = try #require(published.firstIndex(of: .nodeDown(node: "d1")))
                        #expect(changed < down)
                    }
                }
            }
        }
    }

    /// SIGHUP re-reads the configuration file: the new weight, zone and labels reach the record and are
    /// announced as `node_changed`, without registering again.
    @Test func sighupPublishesNewWeightZoneAndLabels() async throws {
        try await withRedisClient { redis, server in
            try await withFakeEngine { engine in
                try await withTemporaryDirectory { directory in
                    try await withEventLog(server) { events in
                        var overrides = agentOverrides(redis: server, engine: engine, node: "h1", directory: directory)
                        for key in ["node.weight", "node.zone", "node.labels"] { overrides[key] = nil }
                        let file = directory + "/agent.yaml"
                        try "node:\n  weight: 10\n  zone: eu-west-1a\n  labels: [tier=bronze]\n".write(
                            toFile: file, atomically: true, encoding: .utf8)
                        let agent = try AgentProcess.launch(
                            ["--config", file] + Self.arguments(overrides), logPath: directory + "/agent.log")
                        try await waitUntil("the node to register", timeout: .seconds(30)) {
                            try await nodeRecord(redis, "h1", has: .weight, "10")
                        }
                        try await waitUntil("node_up") { await events.events.contains(.nodeUp(node: "h1")) }
                        try "node:\n  weight: 75\n  zone: eu-west-1c\n  labels: [tier=gold, disk=ssd]\n".write(
                            toFile: file, atomically: true, encoding: .utf8)
                        agent.signal(SIGHUP)
                        try await waitUntil("the new weight") { try await nodeRecord(redis, "h1", has: .weight, "75") }
                        let record = try await nodeRecord(redis, "h1")
                        #expect(record[NodeRecord.Field.zone.rawValue] == "eu-west-1c")
                        #expect(record[NodeRecord.Field.labels.rawValue] == "disk=ssd,tier=gold")
                        try await waitUntil("node_changed") { await events.events.contains(.nodeChanged(node: "h1")) }
                        #expect(await events.events.filter { $0 == .nodeUp(node: "h1") }.count == 1, "registered again")
                        agent.signal(SIGTERM)
                        #expect(try await agent.waitForExit(timeout: .seconds(30)) == 0, "\(agent.logTail())")
                    }
                }
            }
        }
    }
}

import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Logging
import Testing

@testable import EdgeBalancer

extension IntegrationTests {
    /// Balancers fed by a real Redis: node records from agents, runtime changes persisted and announced.
    @Suite struct RedisRegistry {
        func redisOverrides(_ server: RedisServerProcess, _ extra: [String: String] = [:]) -> [String: String] {
            ["redis.url": "redis://\(server.url.address)", "redis.connectTimeout": "500ms", "redis.commandTimeout": "500ms"]
                .merging(extra) { _, new in new }
        }

        /// A weight set through one balancer's admin API is applied by another within a second (through the
        /// events channel: the periodic resync is set far longer), persisted in Redis, and read by a balancer
        /// that starts afterwards.
        @Test func runtimeWeightChangeSeenByTwoBalancersWithinOneSecond() async throws {
            try await withRedisClient { redis, server in
                try await withBackends(["a", "b"]) { backends in
                    let agent = FakeAgent(redis: redis)
                    for backend in backends { try await agent.register(backend.id, port: backend.port) }
                    let overrides = redisOverrides(server, ["discovery.resyncInterval": "30s", "policy": "weighted"])
                    try await withBalancer(overrides) { first in
                        try await withBalancer(overrides) { second in
                            try await first.waitForUsable(2)
                            try await second.waitForUsable(2)
                            let clock = ContinuousClock()
                            let start = clock.now
                            let response = try await first.admin(.PUT, "/nodes/a/weight", json: #"{"weight": 300}"#)
                            #expect(response.status == .ok)
                            #expect(String(buffer: response.body).contains(#""persisted":true"#))
                            try await waitUntil("both balancers apply weight 300", timeout: .seconds(1)) {
                                for balancer in [first, second] {
                                    guard try await balancer.nodes().nodes.first(where: { $0.id == "a" })?.weight.effective == 300 else {
                                        return false
                                    }
                                }
                                return true
                            }
                            let elapsed = clock.now - start
                            print("weight change seen by both balancers after \(elapsed)")
                            #expect(elapsed < .seconds(1))
                            #expect(try await redis.send("HGET", .string(ClusterKeys().weights), "a").string == "300")
                            let result = await second.load(requests: 400)
                            #expect(result.byBackend["a"] == 300 && result.byBackend["b"] == 100)
                        }
                    }
                    // A balancer started now starts with the override.
                    try await withBalancer(overrides) { restarted in
                        try await restarted.waitForUsable(2)
                        #expect(try await restarted.nodes().nodes.first { $0.id == "a" }?.weight.effective == 300)
                    }
                }
            }
        }

        /// Drain and policy changes are persisted, announced and picked up by another balancer.
        @Test func drainAndPolicyArePersistedAndAnnounced() async throws {
            try await withRedisClient { redis, server in
                try await withBackends(["a", "b"]) { backends in
                    let agent = FakeAgent(redis: redis)
                    for backend in backends { try await agent.register(backend.id, port: backend.port) }
                    let overrides = redisOverrides(server, ["discovery.resyncInterval": "30s"])
                    try await withBalancer(overrides) { first in
                        try await withBalancer(overrides) { second in
                            try await second.waitForUsable(2)
                            #expect(try await first.admin(.POST, "/nodes/b/drain").status == .ok)
                            #expect(try await first.admin(.PUT, "/policy", json: #"{"policy": "least_request"}"#).status == .ok)
                            try await waitUntil("the second balancer drains b and switches policy", timeout: .seconds(1)) {
                                let report = try await second.nodes()
                                return report.policy == "least_request" && report.nodes.first { $0.id == "b" }?.drained == true
                            }
                            #expect(try await redis.send("HGET", .string(ClusterKeys().drains), "b").string == "draining")
                            #expect(try await redis.get("gc:policy") == "least_request")
                            let result = await second.load(requests: 100)
                            #expect(result.byBackend["b"] == nil && result.failures.isEmpty)
                            #expect(try await first.admin(.POST, "/nodes/b/undrain").status == .ok)
                            try await waitUntil("the second balancer undrains b", timeout: .seconds(1)) {
                                try await second.nodes().nodes.first { $0.id == "b" }?.drained == false
                            }
                        }
                    }
                }
            }
        }

        /// Agents' state is honoured (draining and down get no new requests), nodes join as they register,
        /// and a node whose record expired is dropped and pruned from the index.
        @Test func followsAgentsStateJoinsAndExpiry() async throws {
            try await withRedisClient { redis, server in
                try await withBackends(["a", "b", "c"]) { backends in
                    let agent = FakeAgent(redis: redis)
                    try await agent.register("a", port: backends[0].port)
                    try await agent.register("b", port: backends[1].port)
                    try await withBalancer(redisOverrides(server)) { balancer in
                        try await balancer.waitForUsable(2)
                        try await agent.register("c", port: backends[2].port, lease: .milliseconds(600))
                        try await balancer.waitForUsable(3)
                        try await agent.setState("b", .draining)
                        try await balancer.waitForUsable(2)
                        let result = await balancer.load(requests: 100)
                        #expect(result.byBackend["b"] == nil && result.failures.isEmpty)
                        #expect(try await balancer.nodes().nodes.first { $0.id == "b" }?.health.agentState == "draining")
                        // c's lease runs out: it leaves the view, and the index.
                        try await waitUntil("c leaves", timeout: .seconds(15)) {
                            try await !balancer.nodes().nodes.contains { $0.id == "c" }
                        }
                        try await waitUntil("c is pruned from the index", timeout: .seconds(15)) {
                            try await redis.send("SISMEMBER", .string(ClusterKeys().nodes), "c").int == 0
                        }
                    }
                }
            }
        }

        /// On a three-master Redis Cluster (`redis.cluster: true`): balancers discover the agents' nodes
        /// (records on several masters, read in one pipeline split by node), a weight change through one
        /// reaches the other within 1 s through the events channel, and a drained node gets no requests.
        @Test func onRedisCluster() async throws {
            try await withRedisCluster { cluster in
                let redis = RedisClient(configuration: cluster.configuration(), logger: Logger(label: "test.fake-agent"))
                defer { Task { await redis.shutdown() } }
                try await withBackends(["a", "b", "c"]) { backends in
                    let agent = FakeAgent(redis: redis)
                    for backend in backends { try await agent.register(backend.id, port: backend.port) }
                    let nodeSlots = Set(backends.map { RedisClusterSlot.of(key: ClusterKeys().node($0.id)) / (RedisClusterSlot.count / 3) })
                    let overrides = [
                        "redis.url": "redis://\(cluster.nodes[0].url.address)", "redis.cluster": "true",
                        "redis.clusterSeeds": cluster.nodes.dropFirst().map { $0.url.address }.joined(separator: ","),
                        "discovery.resyncInterval": "30s", "policy": "weighted",
                    ]
                    try await withBalancer(overrides) { first in
                        try await withBalancer(overrides) { second in
                            try await first.waitForUsable(3)
                            try await second.waitForUsable(3)
                            let start = ContinuousClock.now
                            #expect(try await first.admin(.PUT, "/nodes/a/weight", json: #"{"weight": 300}"#).status == .ok)
                            try await waitUntil("the other balancer applies weight 300", timeout: .seconds(1)) {
                                try await second.nodes().nodes.first(where: { $0.id == "a" })?.weight.effective == 300
                            }
                            #expect(ContinuousClock.now - start < .seconds(1))
                            #expect(try await first.admin(.POST, "/nodes/c/drain").status == .ok)
                            try await second.waitForUsable(2)
                            let result = await second.load(requests: 400)
                            #expect(result.failures.isEmpty)
                            #expect(
                                result.byBackend["a"] == 300 && result.byBackend["b"] == 100 && result.byBackend["c"] == nil, "\(result.byBackend)")
                        }
                    }
                    #expect(nodeSlots.count >= 2, "the three node records sit on \(nodeSlots.count) master(s)")
                }
            }
        }

        /// When Redis goes away the balancer keeps routing with the last-known nodes, and catches up when it
        /// is back.
        @Test func keepsLastKnownNodesWhileRedisIsDown() async throws {
            try await withRedisClient { redis, server in
                try await withBackends(["a", "b"]) { backends in
                    let agent = FakeAgent(redis: redis)
                    for backend in backends { try await agent.register(backend.id, port: backend.port) }
                    try await withBalancer(redisOverrides(server)) { balancer in
                        try await balancer.waitForUsable(2)
                        await server.stop()
                        try await waitUntil("the registry notices", timeout: .seconds(5)) {
                            await balancer.app.registry.isReachable == false
                        }
                        let result = await balancer.load(requests: 200)
                        #expect(result.failures.isEmpty)
                        #expect(result.byBackend.keys.sorted() == ["a", "b"])
                        try await server.restart()
                        try await waitUntil("the registry reads Redis again", timeout: .seconds(5)) {
                            await balancer.app.registry.isReachable == true
                        }
                    }
                }
            }
        }
    }
}

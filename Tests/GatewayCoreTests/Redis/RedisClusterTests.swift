import GatewayCore
import GatewayTesting
import Logging
import Metrics
import MetricsTestKit
import Testing

/// The client on a real three-master Redis Cluster: commands reach the node of their key, pipelines
/// spread over nodes, transactions and scripts run where their keys live, and `MOVED` and `ASK` are
/// followed while a slot moves.
@Suite("Redis Cluster", .timeLimit(.minutes(2)))
struct RedisClusterTests {
    static let logger = Logger(label: "test.redis-cluster")

    /// Known slots from the Redis Cluster specification, and hash tags.
    @Test func slotsFollowTheSpecification() {
        #expect(RedisClusterSlot.of(key: "123456789") == 0x31C3)  // CRC16/XMODEM check value
        #expect(RedisClusterSlot.of(key: "foo") == 12182)
        #expect(RedisClusterSlot.of(key: "{user1000}.following") == RedisClusterSlot.of(key: "user1000"))
        #expect(RedisClusterSlot.of(key: "{user1000}.followers") == RedisClusterSlot.of(key: "user1000"))
        #expect(RedisClusterSlot.of(key: "foo{}{bar}") != RedisClusterSlot.of(key: "bar"))  // empty tag: the whole key
        #expect(RedisClusterSlot.of(key: "foo{{bar}}zap") == RedisClusterSlot.of(key: "{bar"))
        #expect(RedisClusterSlot.of(key: "") == 0)
    }

    /// The first key of each kind of command this project sends, and no key for those that name none.
    @Test func commandsNameTheirFirstKey() {
        let slot = RedisClusterSlot.of(key: "gc:rl:{api:client}")
        #expect(RedisCommand("GET", "gc:rl:{api:client}").clusterSlot == slot)
        #expect(RedisCommand("hgetall", "gc:rl:{api:client}").clusterSlot == slot)
        #expect(RedisCommand("EVALSHA", "abc", 2, "gc:rl:{api:client}", "other", "argv").clusterSlot == slot)
        #expect(RedisCommand("EVALSHA", "abc", 0, "argv").clusterSlot == nil)
        #expect(RedisCommand("XREAD", "COUNT", 10, "BLOCK", 100, "STREAMS", "gc:rl:{api:client}", "0-0").clusterSlot == slot)
        #expect(RedisCommand("XINFO", "STREAM", "gc:rl:{api:client}").clusterSlot == slot)
        #expect(RedisCommand("PUBLISH", "channel", "message").clusterSlot == nil)
        #expect(RedisCommand("SCRIPT", "LOAD", "return 1").clusterSlot == nil)
        #expect(RedisCommand("PING").clusterSlot == nil)
    }

    /// Our slot of random keys is Redis's own (`CLUSTER KEYSLOT`), and keys written through the client
    /// land on every master, each on the node that serves its slot, and read back.
    @Test func commandsReachTheNodeOfTheirKey() async throws {
        try await withRedisCluster { cluster async throws in
            let client = RedisClient(configuration: cluster.configuration(), logger: Self.logger)
            defer { Task { await client.shutdown() } }
            var generator = SplitMix64(seed: 7)
            for _ in 0..<50 {
                let key = "k\(generator.next())"
                let redisSlot = try await cluster.admins[0].send("CLUSTER", "KEYSLOT", .string(key)).int
                #expect(redisSlot.map(Int.init) == RedisClusterSlot.of(key: key))
            }
            for i in 0..<300 { try await client.set("key:\(i)", to: "value \(i)") }
            for i in 0..<300 { #expect(try await client.get("key:\(i)") == "value \(i)") }
            var total = 0
            for (index, admin) in cluster.admins.enumerated() {
                let size = Int(try await admin.send("DBSIZE").int ?? 0)
                #expect(size > 50, "node \(index) holds \(size) of 300 keys")
                total += size
            }
            #expect(total == 300)
            // Each key is on the node that serves its slot: that node's plain client reads it directly.
            for i in [0, 99, 299] {
                let owner = try await cluster.owner(ofSlot: RedisClusterSlot.of(key: "key:\(i)"))
                #expect(try await cluster.admins[owner].get("key:\(i)") == "value \(i)")
            }
        }
    }

    /// A pipeline of commands for many nodes comes back in the commands' order; a transaction runs on
    /// the node of its hash-tagged keys; one whose keys are in different slots is refused, not split.
    @Test func pipelinesAndTransactions() async throws {
        try await withRedisCluster { cluster async throws in
            let client = RedisClient(configuration: cluster.configuration(), logger: Self.logger)
            defer { Task { await client.shutdown() } }
            let sets = (0..<60).map { RedisCommand("SET", .string("p:\($0)"), .string("v\($0)")) }
            let setReplies = try await client.pipeline(sets)
            #expect(setReplies == Array(repeating: .status("OK"), count: 60))
            let gets = (0..<60).map { RedisCommand("GET", .string("p:\($0)")) } + [RedisCommand("HGET", "p:0", "field")]
            let replies = try await client.pipeline(gets)
            #expect(replies.prefix(60).map(\.string) == (0..<60).map { "v\($0)" })
            #expect(replies.last?.errorMessage?.hasPrefix("WRONGTYPE") == true, "\(String(describing: replies.last))")

            let results = try await client.transaction([
                RedisCommand("INCR", "{t}:a"), RedisCommand("INCRBY", "{t}:b", 5), RedisCommand("MGET", "{t}:a", "{t}:b"),
            ])
            #expect(results == [.integer(1), .integer(5), .array([.bulk("1"), .bulk("5")])])

            let crossSlot = try await redisError {
                try await client.transaction([RedisCommand("SET", "x:1", "1"), RedisCommand("SET", "x:2", "2")])
            }
            #expect(crossSlot != nil && crossSlot?.kind == "server", "\(String(describing: crossSlot))")
        }
    }

    /// Scripts load on each node the first time they run there (`NOSCRIPT`), wherever their keys live.
    @Test func scriptsRunOnEveryNode() async throws {
        try await withRedisCluster { cluster async throws in
            let client = RedisClient(configuration: cluster.configuration(), logger: Self.logger)
            defer { Task { await client.shutdown() } }
            let add = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            for i in 0..<30 {
                #expect(try await client.evalScript(add, keys: ["s:\(i)"], arguments: [.int(i)]) == .integer(Int64(i)))
            }
            for admin in cluster.admins {
                #expect(try await admin.send("SCRIPT", "EXISTS", .string(add.sha1)) == .array([.integer(1)]))
            }
        }
    }

    /// While a slot moves the client follows `ASK` (reads of moved keys, writes of new ones) and, once
    /// it has moved, `MOVED`, after which it goes to the new node directly.
    @Test func followsAskAndMovedWhileASlotMoves() async throws {
        try await withRedisCluster { cluster async throws in
            let client = RedisClient(configuration: cluster.configuration(), logger: Self.logger)
            defer { Task { await client.shutdown() } }
            let keys = (0..<5).map { "{moving}:\($0)" }
            for key in keys { try await client.set(key, to: key) }
            let slot = RedisClusterSlot.of(key: "moving")
            let from = try await cluster.owner(ofSlot: slot)
            let to = (from + 1) % cluster.nodes.count

            try await cluster.beginMigration(slot: slot, from: from, to: to)
            #expect(try await cluster.admins[from].send("DBSIZE") == .integer(0))
            let asksBefore = try await Self.errorCount("ASK", on: cluster.admins[from])
            for key in keys { #expect(try await client.get(key) == key) }  // ASK to the importing node
            #expect(try await Self.errorCount("ASK", on: cluster.admins[from]) >= asksBefore + keys.count)
            try await client.set("{moving}:new", to: "written during the move")
            #expect(try await cluster.admins[to].send("DBSIZE") == .integer(6))
            #expect(
                try await client.transaction([RedisCommand("GET", "{moving}:0"), RedisCommand("GET", "{moving}:new")]).map(\.string)
                    == ["{moving}:0", "written during the move"])

            try await cluster.finishMigration(slot: slot, to: to)
            #expect(try await client.get("{moving}:1") == "{moving}:1")  // MOVED, then learned
            let movedBefore = try await Self.errorCount("MOVED", on: cluster.admins[from])
            #expect(movedBefore >= 1)
            for key in keys { #expect(try await client.get(key) == key) }
            #expect(try await Self.errorCount("MOVED", on: cluster.admins[from]) == movedBefore, "the client still asks the old node")

            // What the client counted, and the metrics a service records from it.
            let stats = try #require(client.clusterStatistics)
            #expect(stats.masters == 3 && stats.asked >= keys.count + 1 && stats.moved >= 1 && stats.layoutReads >= 1, "\(stats)")
            let metrics = TestMetrics()
            let gauges = withMetricsFactory(metrics) { RedisPoolMetrics(prefix: "test") }
            gauges.record(client)
            #expect(try metrics.expectGauge("test_redis_cluster_masters").lastValue == 3)
            #expect(try metrics.expectCounter("test_redis_cluster_redirects_total", [("kind", "ask")]).totalValue == Int64(stats.asked))
            let movedCounter = try metrics.expectCounter("test_redis_cluster_redirects_total", [("kind", "moved")])
            #expect(movedCounter.totalValue == Int64(stats.moved))
            _ = try await client.get("{moving}:0")
            gauges.record(client)
            #expect(movedCounter.totalValue == Int64(stats.moved), "recording again adds only what is new")
        }
    }

    /// A stopped master fails the commands for its slots with a connectivity error, at once and without
    /// hanging; the other masters' keys keep working, and so do commands without a key, even when the
    /// stopped master is the one the URL names.
    @Test func aStoppedMasterFailsOnlyItsSlots() async throws {
        try await withRedisCluster { cluster async throws in
            var configuration = cluster.configuration()
            configuration.connectTimeout = .seconds(1)
            configuration.commandTimeout = .seconds(1)
            let client = RedisClient(configuration: configuration, logger: Self.logger)
            defer { Task { await client.shutdown() } }
            let keyOn = try await cluster.keyPerMaster(prefix: "n:")
            for key in keyOn.values { try await client.set(key, to: "up") }
            // The node the URL names, where commands without a key go first.
            await cluster.nodes[0].stop()
            let stoppedKey = keyOn[0]!
            let error = try await redisError(within: .seconds(5)) { try await client.get(stoppedKey) }
            #expect(error?.isConnectivity == true, "\(String(describing: error))")
            #expect(try await client.get(keyOn[1]!) == "up")
            #expect(try await client.get(keyOn[2]!) == "up")
            // Commands without a key go to another node: Redis does not look down, events still go out.
            try await client.ping()
            #expect(try await client.send("PUBLISH", "gc:events", "still announced") == .integer(0))
        }
    }

    /// A master with a replica dies: once the cluster promotes the replica (after the node timeout),
    /// the client finds it through a new layout and its keys are read and written again, on the replica.
    @Test func followsAFailoverToTheReplica() async throws {
        try await withRedisCluster(masters: 3, replicas: 1, nodeTimeout: .seconds(2)) { cluster async throws in
            var configuration = cluster.configuration()
            configuration.connectTimeout = .seconds(1)
            configuration.commandTimeout = .seconds(1)
            let client = RedisClient(configuration: configuration, logger: Self.logger)
            defer { Task { await client.shutdown() } }
            var i = 0
            while try await cluster.owner(ofSlot: RedisClusterSlot.of(key: "f:\(i)")) != 0 { i += 1 }
            let key = "f:\(i)"
            try await client.set(key, to: "before")
            // Node 3 replicates node 0: wait until it has the write.
            #expect(try await cluster.admins[0].send("WAIT", 1, 5000) == .integer(1))

            await cluster.nodes[0].stop()
            let stopped = ContinuousClock.now
            try await waitUntil("the replica to take over and the client to follow", timeout: .seconds(30), interval: .milliseconds(100)) {
                (try? await client.get(key)) == "before"
            }
            print("failover: keys of the stopped master readable again after \(ContinuousClock.now - stopped)")
            try await client.set(key, to: "after")
            #expect(try await cluster.admins[3].get(key) == "after", "the promoted replica holds the write")
            #expect(try await cluster.owner(ofSlot: RedisClusterSlot.of(key: key)) == 3)
        }
    }

    /// A message published on one node reaches a subscriber on another (the cluster bus carries it), and
    /// the subscriber moves to another seed when its own node stops.
    @Test func pubSubAcrossNodes() async throws {
        try await withRedisCluster { cluster async throws in
            try await Self.subscribeThenStopNode0(cluster, configuration: cluster.configuration(), client: nil)
        }
    }

    /// With the one seed it was given stopped, a subscriber that has the client's layout subscribes on
    /// another node the layout names. (Without the client it would try the stopped seed only.)
    @Test func pubSubMovesBeyondTheSeeds() async throws {
        try await withRedisCluster { cluster async throws in
            var configuration = cluster.configuration()
            configuration.clusterSeeds = []
            configuration.connectTimeout = .seconds(1)
            let client = RedisClient(configuration: configuration, logger: Self.logger)
            defer { Task { await client.shutdown() } }
            try await waitUntil("the client to learn the layout", timeout: .seconds(10)) { client.clusterStatistics?.masters == 3 }
            try await Self.subscribeThenStopNode0(cluster, configuration: configuration, client: client)
        }
    }

    /// Subscribes (on node 0, the URL's), checks a message from node 2 arrives, stops node 0, and checks
    /// the subscriber subscribes again elsewhere, says to resync, and gets messages there.
    static func subscribeThenStopNode0(_ cluster: RedisClusterProcess, configuration: RedisConfiguration, client: RedisClient?) async throws {
        let subscriber = RedisSubscriber(configuration: configuration, channels: ["gc:events"], client: client, logger: Self.logger)
        try await withRecordedSubscription(subscriber) { recorder in
            // Pub/sub is lossy: until the nodes' bus links are all up a message may not travel, so each is
            // published again until it arrives.
            try await Self.publish("hello from node 2", on: cluster.admins[2], until: recorder)
            await cluster.nodes[0].stop()
            try await waitUntil("the subscription on another node", timeout: .seconds(15)) { await recorder.contains(.subscribed(resync: true)) }
            try await Self.publish("after node 0 stopped", on: cluster.admins[2], until: recorder)
        }
    }

    /// A node resharded out of the layout: the client stops routing to it at once, and closes its pool
    /// after the grace; the seeds' pools stay.
    @Test func closesThePoolOfANodeThatLeftTheLayout() async throws {
        try await withRedisCluster { cluster async throws in
            var configuration = cluster.configuration()
            configuration.clusterSeeds = [RedisNodeAddress(host: cluster.nodes[1].host, port: cluster.nodes[1].port)]
            configuration.clientName = "leaving-test"
            configuration.commandTimeout = .seconds(1)  // the pool of a node that left closes 2 s later
            let client = RedisClient(configuration: configuration, logger: Self.logger)
            defer { Task { await client.shutdown() } }
            var i = 0
            while try await cluster.owner(ofSlot: RedisClusterSlot.of(key: "r:\(i)")) != 2 { i += 1 }
            let key = "r:\(i)"
            try await client.set(key, to: "on node 2")
            #expect(try await client.get(key) == "on node 2")
            let before = try await cluster.admins[2].send("CLIENT", "LIST").string ?? ""
            #expect(before.contains("name=leaving-test"), "the client's connection to node 2 is named")
            #expect(client.clusterStatistics?.pools == 3, "seeds 0 and 1, and node 2 for its key")
            #expect(try await client.delete(key) == 1)

            try await cluster.moveAllSlots(from: 2, to: 0)
            // Node 2 answers MOVED for its former slots, which makes the client read the new layout.
            try await client.set(key, to: "on node 0")
            #expect(try await cluster.admins[0].get(key) == "on node 0")
            try await waitUntil("node 2's pool to leave the client", timeout: .seconds(10), interval: .milliseconds(100)) {
                client.clusterStatistics?.pools == 2
            }
            #expect(client.clusterStatistics?.masters == 2)
            try await waitUntil("node 2's pool to close after the grace", timeout: .seconds(10), interval: .milliseconds(100)) {
                client.clusterStatistics?.poolsClosed == 1
            }
            // Closed for good: node 2 has no connection from the client left.
            let clients = try await cluster.admins[2].send("CLIENT", "LIST").string ?? ""
            #expect(!clients.contains("name=leaving-test"), "\(clients)")
            #expect(try await client.get(key) == "on node 0")
        }
    }

    static func publish(_ payload: String, on admin: RedisClient, until recorder: EventRecorder<RedisPubSubEvent>) async throws {
        try await waitUntil("\(payload) to arrive", timeout: .seconds(10), interval: .milliseconds(200)) {
            if await recorder.contains(.message(channel: "gc:events", payload: payload)) { return true }
            try await admin.publish("gc:events", payload)
            return false
        }
    }

    /// How many error replies starting with `code` the node has sent (`INFO errorstats`).
    static func errorCount(_ code: String, on admin: RedisClient) async throws -> Int {
        let info = try await admin.send("INFO", "errorstats").string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("errorstat_\(code):") }),
            let count = line.split(separator: "=").last.flatMap({ Int($0) })
        else { return 0 }
        return count
    }
}

extension RedisValue {
    fileprivate var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}

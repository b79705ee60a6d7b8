import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// The built `gatewayctl` against a real edge-balancer and gateway-engine (their binaries) and a real
/// Redis: tables and `--json`, runtime changes that land in Redis, and errors that name the problem and
/// exit non-zero.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct GatewayctlTests {
    static let token = "gatewayctl-test-token-0123456789abcdef"
    /// A named token (`admin.tokensFile`) the audit lines name its caller by.
    static let aliceToken = "alice-test-token-0123456789abcdef"

    /// A running balancer (two static nodes) and engine on one Redis, and how to call gatewayctl on them.
    struct Cluster {
        let redis: RedisServerProcess
        let balancerAdmin: Int
        let engineAdmin: Int
        let directory: String
        /// The engine's process id, for signals.
        let enginePID: Int32
        /// The `admin.tokensFile` both services read.
        var tokensFile: String { directory + "/admin-tokens" }
        /// The engine's stdout and stderr: its structured log.
        var engineLog: String { (try? String(contentsOfFile: directory + "/engine.log", encoding: .utf8)) ?? "" }

        /// `GET /metrics` on an admin listener, with the token.
        func metrics(port: Int) async throws -> String {
            let response = try await AdminHTTPClient().request(
                .GET, "http://127.0.0.1:\(port)/metrics", headers: ["Authorization": "Bearer \(GatewayctlTests.token)"])
            return String(buffer: response.body)
        }

        func ctl(
            _ arguments: [String], token: String? = GatewayctlTests.token, environment: [String: String] = [:]
        ) async throws
            -> (status: Int32, output: String)
        {
            var env = [
                "GATEWAYCTL_BALANCER": "http://127.0.0.1:\(balancerAdmin)", "GATEWAYCTL_ENGINE": "http://127.0.0.1:\(engineAdmin)",
                "GATEWAYCTL_REDIS": "redis://\(redis.url.address)",
                "HOME": directory,
            ]
            env["GATEWAYCTL_TOKEN"] = token ?? ""
            env.merge(environment) { _, new in new }
            return try await ServiceProcess.run(try GatewayctlTests.binary(), arguments, environment: env)
        }
    }

    static func binary() throws -> String {
        let beside = URL(fileURLWithPath: try ServiceBinary.balancer.path()).deletingLastPathComponent().appendingPathComponent("gatewayctl").path
        guard FileManager.default.isExecutableFile(atPath: beside) else { throw ServiceProcessError.binaryNotFound("gatewayctl", [beside]) }
        return beside
    }

    static func withCluster(_ body: (Cluster) async throws -> Void) async throws {
        let directory = try makeTemporaryDirectory("gatewayctl")
        defer { removeDirectory(directory) }
        try await withRedisServer { redis in
            let a = try await TestHTTPBackend.start(name: "a")
            let b = try await TestHTTPBackend.start(name: "b")
            let ports = try await (0..<4).asyncMap { _ in try await LoopbackPort.free() }
            let redisURL = "redis://\(redis.url.address)"
            let tokensFile = directory + "/admin-tokens"
            try "alice:\(aliceToken)\n".write(toFile: tokensFile, atomically: true, encoding: .utf8)
            let balancer = try ServiceProcess.launch(
                try ServiceBinary.balancer.path(),
                [
                    "--set", "admin.token=\(token)", "--set", "admin.port=\(ports[0])", "--set", "listen.port=\(ports[1])",
                    "--set", "redis.url=\(redisURL)", "--set", "nodes.static=id=a,host=127.0.0.1,port=\(a.port);id=b,host=127.0.0.1,port=\(b.port)",
                    "--set", "health.interval=200ms", "--set", "admin.tokensFile=\(tokensFile)",
                ], logPath: directory + "/balancer.log")
            let engine = try ServiceProcess.launch(
                try ServiceBinary.engine.path(),
                [
                    "--set", "admin.token=\(token)", "--set", "admin.port=\(ports[2])", "--set", "listen.port=\(ports[3])",
                    "--set", "redis.url=\(redisURL)", "--set", "admin.tokensFile=\(tokensFile)",
                ], logPath: directory + "/engine.log")
            defer {
                balancer.signal(SIGKILL)
                engine.signal(SIGKILL)
            }
            let cluster = Cluster(
                redis: redis, balancerAdmin: ports[0], engineAdmin: ports[2], directory: directory, enginePID: engine.process.processIdentifier)
            do {
                try await waitUntil("the balancer to see both nodes usable", timeout: .seconds(20), interval: .milliseconds(100)) {
                    let (status, output) = try await cluster.ctl(["nodes", "--json"])
                    guard status == 0, let report = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
                        let nodes = report["nodes"] as? [[String: Any]]
                    else { return false }
                    return nodes.filter { $0["usable"] as? Bool == true }.count == 2
                }
                try await waitUntil("the engine to be ready", timeout: .seconds(20), interval: .milliseconds(100)) {
                    try await cluster.ctl(["apis", "list"]).status == 0
                }
                try await body(cluster)
            } catch {
                Issue.record("balancer log: \(balancer.logTail())\nengine log: \(engine.logTail())")
                await a.stop()
                await b.stop()
                throw error
            }
            await a.stop()
            await b.stop()
        }
    }

    /// `nodes` as a table and as JSON; `weight set`, `drain` and `undrain` change the balancer and are
    /// persisted in Redis.
    @Test func nodesWeightsAndDrains() async throws {
        try await Self.withCluster { cluster in
            let table = try await cluster.ctl(["nodes"])
            #expect(table.status == 0)
            let lines = table.output.split(separator: "\n")
            #expect(lines.first?.hasPrefix("NODE") == true, "\(table.output)")
            #expect(lines.filter { $0.hasPrefix("a ") || $0.hasPrefix("b ") }.count == 2, "\(table.output)")

            let set = try await cluster.ctl(["weight", "set", "a", "300"])
            #expect(set.status == 0 && set.output.contains("weight of a set to 300"), "\(set.output)")
            let admin = RedisClient(configuration: cluster.redis.configuration(), logger: Logger(label: "test"))
            defer { Task { await admin.shutdown() } }
            #expect(try await admin.send("HGET", .string(ClusterKeys().weights), "a").string == "300")
            let got = try await cluster.ctl(["weight", "get", "a", "--json"])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(got.output.utf8)) as? [String: Any], "\(got.output)")
            #expect((json["weight"] as? [String: Any])?["effective"] as? Int == 300, "\(got.output)")

            #expect(try await cluster.ctl(["drain", "b"]).output.contains("b drained"))
            #expect(try await admin.send("HGET", .string(ClusterKeys().drains), "b").string == "draining")
            #expect(try await cluster.ctl(["nodes"]).output.split(separator: "\n").contains { $0.hasPrefix("b ") && $0.contains("drained") })
            #expect(try await cluster.ctl(["undrain", "b"]).status == 0)
            #expect(try await admin.send("HEXISTS", .string(ClusterKeys().drains), "b").int == 0)
        }
    }

    /// API keys through the engine: the key is printed once, listed by id (never the key), and revoked;
    /// the engine logs the creation and the revocation (by id, never the key) with their request ids and
    /// callers: alice's named token, then the `admin` token.
    @Test func keysCreateListRevoke() async throws {
        try await Self.withCluster { cluster in
            let created = try await cluster.ctl(["keys", "create", "--name", "partner", "--json"], token: Self.aliceToken)
            #expect(created.status == 0, "\(created.output)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])
            let key = try #require(object["key"] as? String)
            let id = try #require((object["record"] as? [String: Any])?["id"] as? String)
            let listed = try await cluster.ctl(["keys", "list"])
            #expect(listed.status == 0 && listed.output.contains(id) && listed.output.contains("partner"), "\(listed.output)")
            #expect(!listed.output.contains(key), "the key itself is never listed")
            let updated = try await cluster.ctl(["keys", "update", id, "--rate", "5", "--apis", "orders,catalog", "--quota", "1000"])
            #expect(updated.status == 0 && updated.output.contains("updated \(id)"), "\(updated.output)")
            let shown = try await cluster.ctl(["keys", "show", id])
            let record = try #require(try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any], "\(shown.output)")
            #expect((record["rate_limit"] as? [String: Any])?["burst"] as? Int == 5)
            #expect(record["allowed_apis"] as? [String] == ["orders", "catalog"])
            #expect((record["quota"] as? [String: Any])?["period_seconds"] as? Int == 86_400)
            let cleared = try await cluster.ctl(["keys", "update", id, "--no-rate-limit", "--apis", "all"])
            #expect(cleared.status == 0, "\(cleared.output)")
            let after = try await cluster.ctl(["keys", "show", id])
            #expect(!after.output.contains("rate_limit") && after.output.contains(#""allowed_apis" : ["#), "\(after.output)")
            let contradictory = try await cluster.ctl(["keys", "update", id, "--rate", "5", "--no-rate-limit"])
            #expect(contradictory.status != 0 && contradictory.output.contains("contradict"), "\(contradictory.output)")
            let nothing = try await cluster.ctl(["keys", "update", id])
            #expect(nothing.status != 0 && nothing.output.contains("nothing to change"), "\(nothing.output)")
            let unknown = try await cluster.ctl(["keys", "update", "000000000000", "--name", "x"])
            #expect(unknown.status == 1 && unknown.output.contains("no API key 000000000000"), "\(unknown.output)")
            #expect(try await cluster.ctl(["keys", "revoke", id]).output.contains("revoked \(id)"))
            // A key clients already hold, read from a file (never the command line), is imported.
            let legacyFile = cluster.directory + "/legacy-key"
            try "legacy-key-0123456789abcdef\n".write(toFile: legacyFile, atomically: true, encoding: .utf8)
            let imported = try await cluster.ctl(["keys", "create", "--name", "legacy", "--import-from", legacyFile])
            #expect(imported.status == 0 && imported.output.contains("imported: id"), "\(imported.output)")
            #expect(!imported.output.contains("legacy-key-0123456789abcdef"))
            let twice = try await cluster.ctl(["keys", "create", "--name", "legacy", "--import-from", legacyFile])
            #expect(twice.status == 1 && twice.output.contains("exists already"), "\(twice.output)")
            let again = try await cluster.ctl(["keys", "revoke", id])
            #expect(again.status == 1, "\(again.output)")
            try await waitUntil("the engine's audit lines", timeout: .seconds(5), interval: .milliseconds(50)) {
                let lines = cluster.engineLog.split(separator: "\n")
                return lines.contains {
                    $0.contains("API key created") && $0.contains(id) && $0.contains("partner") && $0.contains("request.id")
                        && $0.contains("admin.caller=alice")
                }
                    && lines.contains {
                        $0.contains("API key revoked") && $0.contains(id) && $0.contains("request.id") && $0.contains("admin.caller=admin")
                    }
                    && lines.contains {
                        $0.contains("API key updated") && $0.contains(id) && $0.contains("key.changed=allowed_apis,quota,rate_limit")
                    }
            }
            #expect(!cluster.engineLog.contains(key), "the key itself is never logged")
        }
    }

    /// SIGHUP rereads `admin.tokensFile`: a token added works from then on, and one removed is refused.
    @Test func reloadAddsAndRevokesNamedTokens() async throws {
        try await Self.withCluster { cluster in
            let bob = "bob-test-token-0123456789abcdef"
            #expect(try await cluster.ctl(["apis", "list"], token: bob).status == 1, "bob is not known yet")
            try "alice:\(Self.aliceToken)\nbob:\(bob)\n".write(toFile: cluster.tokensFile, atomically: true, encoding: .utf8)
            kill(cluster.enginePID, SIGHUP)
            try await waitUntil("bob's token accepted", timeout: .seconds(10), interval: .milliseconds(100)) {
                try await cluster.ctl(["apis", "list"], token: bob).status == 0
            }
            try "alice:\(Self.aliceToken)\n".write(toFile: cluster.tokensFile, atomically: true, encoding: .utf8)
            kill(cluster.enginePID, SIGHUP)
            try await waitUntil("bob's token refused", timeout: .seconds(10), interval: .milliseconds(100)) {
                try await cluster.ctl(["apis", "list"], token: bob).status == 1
            }
            #expect(try await cluster.ctl(["apis", "list"], token: Self.aliceToken).status == 0)
            #expect(try await cluster.ctl(["apis", "list"]).status == 0, "admin.token still accepted")
            #expect(cluster.engineLog.contains("admin tokens reloaded"))
            #expect(!cluster.engineLog.contains(bob), "no token in the log")
        }
    }

    /// Errors name the problem on stderr and exit 1: an unknown node, no token, a wrong token, a weight
    /// out of range, an admin API that is not there, Redis unreachable for `status`, a config file that
    /// does not exist, and a bad `GATEWAYCTL_REDIS_CLUSTER`.
    @Test func errorsNameTheProblemAndExitNonZero() async throws {
        try await Self.withCluster { cluster in
            let unknown = try await cluster.ctl(["weight", "set", "nope", "3"])
            #expect(unknown.status == 1 && unknown.output.contains("gatewayctl:") && unknown.output.contains("nope"), "\(unknown.output)")
            let noToken = try await cluster.ctl(["nodes"], token: nil)
            #expect(noToken.status == 1 && noToken.output.contains("no admin token"), "\(noToken.output)")
            let wrongToken = try await cluster.ctl(["nodes"], token: "wrong-token-0123456789")
            #expect(wrongToken.status == 1 && wrongToken.output.contains("401"), "\(wrongToken.output)")
            // Both refusals are counted (the call without a token never left gatewayctl).
            let refused = try await cluster.metrics(port: cluster.balancerAdmin).split(separator: "\n")
                .first { $0.hasPrefix("balancer_admin_auth_failures_total ") }
            #expect(refused == "balancer_admin_auth_failures_total 1", "\(refused ?? "no balancer_admin_auth_failures_total")")
            let range = try await cluster.ctl(["weight", "set", "a", "20000"])
            #expect(range.status != 0 && range.output.contains("between 0 and 10000"), "\(range.output)")
            let nowhere = try await cluster.ctl(["nodes"], environment: ["GATEWAYCTL_BALANCER": "http://127.0.0.1:1"])
            #expect(nowhere.status == 1 && nowhere.output.contains("cannot reach"), "\(nowhere.output)")
            let noRedis = try await cluster.ctl(["status"], environment: ["GATEWAYCTL_REDIS": "redis://127.0.0.1:1"])
            #expect(noRedis.status == 1 && noRedis.output.contains("cannot read the cluster"), "\(noRedis.output)")
            let missingConfig = try await cluster.ctl(["nodes"], token: nil, environment: ["GATEWAYCTL_CONFIG": cluster.directory + "/missing"])
            #expect(
                missingConfig.status == 1 && missingConfig.output.contains("config file") && missingConfig.output.contains("does not exist"),
                "\(missingConfig.output)")
            let noAPI = try await cluster.ctl(["apis", "targets", "nope"])
            #expect(noAPI.status == 1 && noAPI.output.contains("no API nope served by this engine"), "\(noAPI.output)")
            let badCluster = try await cluster.ctl(["status"], environment: ["GATEWAYCTL_REDIS_CLUSTER": "maybe"])
            #expect(badCluster.status == 1 && badCluster.output.contains("redis_cluster must be true or false"), "\(badCluster.output)")
        }
    }

    /// `cache purge` adds an entry to the invalidation stream and `status` reads the node records, on one
    /// Redis and, with `--redis-cluster`, on a Redis Cluster; `cache purge` over TLS (`rediss://`).
    @Test func purgeAndStatusOnRedisAndOnARedisCluster() async throws {
        try await Self.withCluster { cluster in
            let purge = try await cluster.ctl(["cache", "purge", "--api", "orders"])
            #expect(purge.status == 0 && purge.output.contains("invalidation") && purge.output.contains("added"), "\(purge.output)")
            let admin = RedisClient(configuration: cluster.redis.configuration(), logger: Logger(label: "test"))
            defer { Task { await admin.shutdown() } }
            #expect(try await admin.send("XLEN", .string(ClusterKeys().invalidations)).int == 1)
            #expect(try await cluster.ctl(["status"]).status == 0)

            try await withRedisCluster { redisCluster in
                let env = ["GATEWAYCTL_REDIS": "redis://\(redisCluster.nodes[1].url.address)"]
                let onCluster = try await cluster.ctl(["cache", "purge", "--api", "orders", "--redis-cluster"], environment: env)
                #expect(onCluster.status == 0, "\(onCluster.output)")
                let client = RedisClient(configuration: redisCluster.configuration(), logger: Logger(label: "test"))
                defer { Task { await client.shutdown() } }
                #expect(try await client.send("XLEN", .string(ClusterKeys().invalidations)).int == 1)
                let status = try await cluster.ctl(["status", "--redis-cluster"], environment: env)
                #expect(status.status == 0, "\(status.output)")
                // Without the flag, a node that does not hold the stream's slot answers MOVED: an error.
                let owner = try await redisCluster.owner(ofSlot: RedisClusterSlot.of(key: ClusterKeys().invalidations))
                let other = redisCluster.nodes[(owner + 1) % redisCluster.nodes.count]
                let plain = try await cluster.ctl(["cache", "purge"], environment: ["GATEWAYCTL_REDIS": "redis://\(other.url.address)"])
                #expect(plain.status == 1 && plain.output.contains("MOVED"), "\(plain.output)")
            }

            // Redis over TLS: rediss:// with the CA that signed its certificate, by flag or environment;
            // without it (the system's trust store), an error that says TLS; a CA file with redis://, too.
            try await withTLSRedisServer { tlsRedis, tlsPort, certificates in
                let url = "rediss://127.0.0.1:\(tlsPort)"
                let byFlag = try await cluster.ctl(
                    ["cache", "purge", "--api", "orders", "--redis-ca-file", certificates.caFile], environment: ["GATEWAYCTL_REDIS": url])
                #expect(byFlag.status == 0, "\(byFlag.output)")
                let byEnvironment = try await cluster.ctl(
                    ["cache", "purge", "--api", "orders"], environment: ["GATEWAYCTL_REDIS": url, "GATEWAYCTL_REDIS_CA_FILE": certificates.caFile])
                #expect(byEnvironment.status == 0, "\(byEnvironment.output)")
                let client = RedisClient(configuration: tlsRedis.configuration(), logger: Logger(label: "test"))
                defer { Task { await client.shutdown() } }
                #expect(try await client.send("XLEN", .string(ClusterKeys().invalidations)).int == 2)
                let untrusted = try await cluster.ctl(["cache", "purge"], environment: ["GATEWAYCTL_REDIS": url])
                #expect(untrusted.status == 1 && untrusted.output.contains("TLS"), "\(untrusted.output)")
                let plainURL = try await cluster.ctl(
                    ["cache", "purge", "--redis-ca-file", certificates.caFile], environment: ["GATEWAYCTL_REDIS": "redis://\(tlsRedis.url.address)"])
                #expect(plainURL.status == 1 && plainURL.output.contains("rediss://"), "\(plainURL.output)")
            }
        }
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

import Foundation
import GatewayCore
import Logging

/// A real Redis Cluster for tests: `masters` test `redis-server`s in cluster mode on loopback, the
/// 16,384 slots split evenly between them (`CLUSTER ADDSLOTSRANGE`), joined with `CLUSTER MEET`, with
/// optional replicas (`CLUSTER REPLICATE`), and ready once every node reports `cluster_state:ok` and
/// knows every other, and every replica is in sync.
///
/// ```swift
/// let cluster = try await RedisClusterProcess.start()
/// defer { Task { await cluster.tearDown() } }
/// let client = RedisClient(configuration: cluster.configuration(), logger: logger)
/// ```
public final class RedisClusterProcess: Sendable {
    public let nodes: [RedisServerProcess]
    /// Each node's cluster bus port.
    public let busPorts: [Int]
    /// One plain (non-cluster) client per node, for setting the cluster up and for tests that look at
    /// one node.
    public let admins: [RedisClient]
    /// With `tls`: each node's TLS port, and the certificates (`tls-cluster yes`: the cluster bus is TLS,
    /// and a TLS client is given the nodes' TLS ports in `CLUSTER SLOTS` and redirections).
    public let tlsPorts: [Int]
    public let certificates: TestCertificates?

    private init(nodes: [RedisServerProcess], busPorts: [Int], admins: [RedisClient], tlsPorts: [Int], certificates: TestCertificates?) {
        self.nodes = nodes
        self.busPorts = busPorts
        self.admins = admins
        self.tlsPorts = tlsPorts
        self.certificates = certificates
    }

    /// Starts and forms the cluster.
    ///
    /// - Parameters:
    ///   - masters: nodes that serve slots (nodes `0..<masters`).
    ///   - replicas: nodes that replicate masters `0..<replicas`, one each (nodes `masters...`).
    ///   - nodeTimeout: `cluster-node-timeout`: how long a silent node takes to be failed (and its replica
    ///     promoted).
    ///   - tls: certificates for a TLS port on every node and a TLS cluster bus (``tlsConfiguration()``).
    public static func start(
        masters: Int = 3, replicas: Int = 0, nodeTimeout: Duration = .seconds(5), tls: TestCertificates? = nil,
        logger: Logger = Logger(label: "test.redis-cluster")
    ) async throws -> RedisClusterProcess {
        precondition(masters >= 1 && (0...masters).contains(replicas))
        var nodes: [RedisServerProcess] = []
        var busPorts: [Int] = []
        var tlsPorts: [Int] = []
        do {
            for _ in 0..<(masters + replicas) {
                let (node, busPort, tlsPort) = try await startNode(nodeTimeout: nodeTimeout, tls: tls)
                nodes.append(node)
                busPorts.append(busPort)
                if let tlsPort { tlsPorts.append(tlsPort) }
            }
        } catch {
            for node in nodes { await node.tearDown() }
            throw error
        }
        let admins = nodes.map { RedisClient(configuration: $0.configuration(), logger: logger) }
        let cluster = RedisClusterProcess(nodes: nodes, busPorts: busPorts, admins: admins, tlsPorts: tlsPorts, certificates: tls)
        do {
            let per = RedisClusterSlot.count / masters
            for (index, admin) in admins.prefix(masters).enumerated() {
                let first = index * per
                let last = index == masters - 1 ? RedisClusterSlot.count - 1 : first + per - 1
                try await admin.send("CLUSTER", "ADDSLOTSRANGE", .int(first), .int(last))
            }
            for (index, (node, busPort)) in zip(nodes, busPorts).enumerated().dropFirst() {
                let port = tls == nil ? node.port : tlsPorts[index]
                try await admins[0].send("CLUSTER", "MEET", .string(node.host), .int(port), .int(busPort))
            }
            try await waitUntil("every node to know every other", timeout: .seconds(30), interval: .milliseconds(50)) {
                try await cluster.everyNodeKnowsAll()
            }
            for replica in 0..<replicas {
                let masterID = try await cluster.nodeID(replica)
                try await admins[masters + replica].send("CLUSTER", "REPLICATE", .string(masterID))
            }
            try await waitUntil("the cluster to be formed", timeout: .seconds(30), interval: .milliseconds(50)) {
                try await cluster.isFormed(replicas: Array(masters..<(masters + replicas)))
            }
            return cluster
        } catch {
            await cluster.tearDown()
            throw error
        }
    }

    /// A node in cluster mode. Its cluster bus gets a free port of its own (`--cluster-port`): the default,
    /// the data port plus 10,000, is past 65,535 for the high ports a free-port search finds. A start that
    /// loses that port to another process is tried again.
    ///
    /// A master whose slots are down does not stop the others serving theirs
    /// (`cluster-require-full-coverage no`), so a test that stops one is not raced by the node timeout.
    private static func startNode(
        nodeTimeout: Duration, tls: TestCertificates?
    ) async throws -> (RedisServerProcess, busPort: Int, tlsPort: Int?) {
        var lastError: (any Error)?
        for _ in 0..<3 {
            let busPort = try await LoopbackPort.free()
            var arguments = [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", String(Int(nodeTimeout / .milliseconds(1))),
                "--cluster-require-full-coverage", "no",
                "--cluster-port", String(busPort),
            ]
            var tlsPort: Int?
            if let tls {
                let port = try await LoopbackPort.free()
                tlsPort = port
                arguments += [
                    "--tls-port", String(port), "--tls-cert-file", tls.serverCertFile, "--tls-key-file", tls.serverKeyFile,
                    "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no", "--tls-cluster", "yes",
                ]
            }
            do {
                return (try await RedisServerProcess.start(.init(extraArguments: arguments)), busPort, tlsPort)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    private func everyNodeKnowsAll() async throws -> Bool {
        for admin in admins {
            let info = try await admin.send("CLUSTER", "INFO").string ?? ""
            guard info.contains("cluster_known_nodes:\(nodes.count)\r") else { return false }
        }
        return true
    }

    /// Every node says `cluster_state:ok`, knows all the others and has its links to them up, and every
    /// replica's link to its master is up.
    private func isFormed(replicas: [Int]) async throws -> Bool {
        guard try await everyNodeKnowsAll() else { return false }
        for admin in admins {
            guard (try await admin.send("CLUSTER", "INFO").string ?? "").contains("cluster_state:ok") else { return false }
            // Every link to the others is up (a message published on one node travels over them).
            let lines = (try await admin.send("CLUSTER", "NODES").string ?? "").split(whereSeparator: \.isNewline)
            guard lines.count == nodes.count,
                lines.allSatisfy({ $0.contains("myself") || ($0.hasSuffix(" connected") || $0.contains(" connected ")) })
            else { return false }
        }
        for replica in replicas {
            guard (try await admins[replica].send("INFO", "replication").string ?? "").contains("master_link_status:up") else { return false }
        }
        return true
    }

    /// A cluster client configuration: the first node as the URL, the others as seeds, test timeouts.
    public func configuration() -> RedisConfiguration {
        var configuration = nodes[0].configuration()
        configuration.cluster = true
        configuration.clusterSeeds = nodes.dropFirst().map { RedisNodeAddress(host: $0.host, port: $0.port) }
        return configuration
    }

    /// A cluster client configuration over TLS (`rediss://`, trusting the test CA): the first node's TLS
    /// port as the URL, the others' as seeds. Only for a cluster started with `tls`.
    public func tlsConfiguration() -> RedisConfiguration {
        precondition(certificates != nil, "the cluster was started without TLS")
        var configuration = RedisConfiguration.forTesting(url: RedisURL(host: nodes[0].host, port: tlsPorts[0], tls: true))
        configuration.cluster = true
        configuration.clusterSeeds = zip(nodes, tlsPorts).dropFirst().map { RedisNodeAddress(host: $0.0.host, port: $0.1) }
        configuration.tls.caFile = certificates?.caFile
        return configuration
    }

    /// The node's cluster id (`CLUSTER MYID`).
    public func nodeID(_ node: Int) async throws -> String {
        guard let id = try await admins[node].send("CLUSTER", "MYID").string else { throw RedisClusterProcessError.unexpected("MYID") }
        return id
    }

    /// The index of the node serving `slot`, as the first node that answers sees it.
    public func owner(ofSlot slot: Int) async throws -> Int {
        var answer: RedisValue?
        var lastError: (any Error)?
        for admin in admins {
            do {
                answer = try await admin.send("CLUSTER", "SLOTS")
                break
            } catch {
                lastError = error
            }
        }
        guard let reply = answer else { throw lastError ?? RedisClusterProcessError.unexpected("CLUSTER SLOTS") }
        for range in reply.array ?? [] {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                let port = parts[2].array?[1].int
            else { continue }
            if (Int(start)...Int(end)).contains(slot), let index = nodes.firstIndex(where: { $0.port == Int(port) }) { return index }
        }
        throw RedisClusterProcessError.unexpected("no node serves slot \(slot)")
    }

    /// A key served by each master: `prefix` + the first number whose key lands on that node, by index.
    public func keyPerMaster(prefix: String) async throws -> [Int: String] {
        let masters = Set(
            try await (0..<nodes.count).asyncCompactMap { node in
                (try await admins[node].send("ROLE").array?.first?.string == "master") ? node : nil
            })
        var keys: [Int: String] = [:]
        var i = 0
        while keys.count < masters.count {
            let key = "\(prefix)\(i)"
            let owner = try await owner(ofSlot: RedisClusterSlot.of(key: key))
            if keys[owner] == nil { keys[owner] = key }
            i += 1
        }
        return keys
    }

    /// Starts moving `slot` from node `from` to node `to` as `redis-cli --cluster reshard` does: the target
    /// imports, the source migrates, and the slot's keys are moved (`MIGRATE`). Until ``finishMigration``
    /// the source answers `ASK` for keys it no longer has.
    public func beginMigration(slot: Int, from: Int, to: Int) async throws {
        let fromID = try await nodeID(from)
        let toID = try await nodeID(to)
        try await admins[to].send("CLUSTER", "SETSLOT", .int(slot), "IMPORTING", .string(fromID))
        try await admins[from].send("CLUSTER", "SETSLOT", .int(slot), "MIGRATING", .string(toID))
        while true {
            let keys = try await admins[from].send("CLUSTER", "GETKEYSINSLOT", .int(slot), 100).array ?? []
            if keys.isEmpty { break }
            var arguments: [RedisArgument] = [.string(nodes[to].host), .int(nodes[to].port), "", 0, 5000, "KEYS"]
            arguments += keys.compactMap { $0.string.map(RedisArgument.string) }
            try await admins[from].send(RedisCommand("MIGRATE", arguments: arguments))
        }
    }

    /// Ends a migration: every node learns that `slot` is `to`'s, `to` first (it claims the slot under a
    /// new config epoch, which the others' gossip cannot undo), then the others, as the Redis manual
    /// orders it.
    public func finishMigration(slot: Int, to: Int) async throws {
        let toID = try await nodeID(to)
        for node in [to] + admins.indices.filter({ $0 != to }) {
            try await admins[node].send("CLUSTER", "SETSLOT", .int(slot), "NODE", .string(toID))
        }
    }

    /// Gives every slot of node `from` to node `to` (`CLUSTER SETSLOT slot NODE`, on `to`, then `from`,
    /// then the others), so the layout no longer names `from`. Its slots must hold no keys.
    public func moveAllSlots(from: Int, to: Int) async throws {
        let toID = try await nodeID(to)
        let layout = try await admins[to].send("CLUSTER", "SLOTS")
        var slots: [Int] = []
        for range in layout.array ?? [] {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                parts[2].array?[1].int == Int64(nodes[from].port)
            else { continue }
            slots += Int(start)...Int(end)
        }
        guard !slots.isEmpty else { throw RedisClusterProcessError.unexpected("node \(from) serves no slots") }
        let commands = slots.map { RedisCommand("CLUSTER", "SETSLOT", .int($0), "NODE", .string(toID)) }
        for node in [to, from] + admins.indices.filter({ $0 != to && $0 != from }) {
            for reply in try await admins[node].pipeline(commands) {
                if case .error(let message) = reply { throw RedisClusterProcessError.unexpected("SETSLOT on node \(node): \(message)") }
            }
        }
    }

    public func tearDown() async {
        for admin in admins { await admin.shutdown() }
        for node in nodes { await node.tearDown() }
    }
}

public enum RedisClusterProcessError: Error, CustomStringConvertible {
    case unexpected(String)

    public var description: String {
        switch self {
        case .unexpected(let what): return "redis cluster: unexpected reply to \(what)"
        }
    }
}

/// Runs `body` with a freshly formed Redis Cluster, torn down afterwards whether `body` returns or throws.
public func withRedisCluster<T>(
    masters: Int = 3, replicas: Int = 0, nodeTimeout: Duration = .seconds(5), tls: TestCertificates? = nil,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisClusterProcess) async throws -> T
) async throws -> T {
    let cluster = try await RedisClusterProcess.start(masters: masters, replicas: replicas, nodeTimeout: nodeTimeout, tls: tls)
    do {
        let result = try await body(cluster)
        await cluster.tearDown()
        return result
    } catch {
        await cluster.tearDown()
        throw error
    }
}

extension Sequence {
    fileprivate func asyncCompactMap<T>(_ transform: (Element) async throws -> T?) async rethrows -> [T] {
        var result: [T] = []
        for element in self { if let value = try await transform(element) { result.append(value) } }
        return result
    }
}

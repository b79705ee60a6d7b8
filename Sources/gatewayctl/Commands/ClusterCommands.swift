import ArgumentParser
import Foundation
import GatewayCore
import NodeAgent

/// `gatewayctl cache purge`: a cluster-wide invalidation through the Redis stream every node agent reads.
struct Cache: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Purge response caches on every node.", subcommands: [Purge.self])

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a cluster-wide invalidation (all, one API, a path prefix, or one resource); --wait until every live node applied it.")
        @OptionGroup var options: CtlOptions
        @Option(help: "Only this API's entries.") var api: String?
        @Option(help: "Only entries under this path prefix.") var prefix: String?
        @Option(help: "Only this resource, host/path?query.") var key: String?
        @Flag(help: "Wait until every live node has applied it.") var wait = false
        @Option(help: "How long --wait waits, in seconds.") var timeout: Double = 10

        func validate() throws {
            if key != nil && (api != nil || prefix != nil) { throw ValidationError("--key cannot be combined with --api or --prefix") }
            if let prefix, !prefix.hasPrefix("/") { throw ValidationError("--prefix must start with /") }
        }

        func run() async throws {
            try await runReporting {
                let scope: InvalidationScope
                if let key {
                    scope = .key(key)
                } else if let prefix {
                    scope = .prefix(prefix, api: api)
                } else if let api {
                    scope = .api(api)
                } else {
                    scope = .all
                }
                let redis = try options.redisClient()
                defer { Task { await redis.shutdown() } }
                let publisher = InvalidationPublisher(redis: redis, keys: ClusterKeys(prefix: try options.prefix()))
                let id: String
                do { id = try await publisher.publish(scope) } catch { throw CtlError("cannot add the invalidation: \(error)") }
                guard wait else {
                    if options.json { printJSON(["id": id, "scope": "\(scope)"]) } else { print("invalidation \(id) added (\(scope))") }
                    return
                }
                let progress = try await publisher.waitForApplied(id: id, timeout: .milliseconds(Int64(timeout * 1000)))
                if options.json {
                    printJSON([
                        "id": id, "complete": progress.isComplete, "applied": progress.applied,
                        "pending": progress.laggards.map {
                            ["node": $0.node, "last_applied": $0.lastApplied, "state": $0.state.rawValue, "health": $0.health.rawValue]
                        },
                    ])
                } else if progress.isComplete {
                    print("invalidation \(id) applied on \(progress.applied.count) node(s): \(progress.applied.joined(separator: ", "))")
                } else {
                    print("invalidation \(id) not applied everywhere within \(timeout)s")
                    printTable(
                        ["NODE", "LAST_APPLIED", "STATE", "HEALTH", "REASON"],
                        progress.laggards.map { [$0.node, $0.lastApplied, $0.state.rawValue, $0.health.rawValue, $0.healthReason] })
                }
                if !progress.isComplete { throw ExitCode.failure }
            }
        }
    }
}

/// `gatewayctl status`: the cluster from Redis: regions, nodes per state, and definition drift.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise the cluster: regions, nodes by state, definitions version per node and drift.")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await runReporting {
            let redis = try options.redisClient()
            let url = redis.configuration.url
            defer { Task { await redis.shutdown() } }
            let keys = ClusterKeys(prefix: try options.prefix())
            var records: [NodeRecord] = []
            do {
                let ids = (try await redis.send("SMEMBERS", .string(keys.nodes)).array ?? []).compactMap(\.string).sorted()
                for id in ids {
                    if let record = NodeRecord(fields: try await redis.hgetall(keys.node(id))) { records.append(record) }
                }
            } catch {
                throw CtlError("cannot read the cluster from \(url): \(error)")
            }
            let versions = Set(records.map(\.definitionsVersion).filter { !$0.isEmpty })
            if options.json {
                printJSON([
                    "nodes": records.map {
                        [
                            "id": $0.id, "region": $0.region, "zone": $0.zone, "state": $0.state.rawValue, "health": $0.health.rawValue,
                            "defs_version": $0.definitionsVersion, "last_invalidation": $0.lastInvalidation,
                        ]
                    },
                    "drift": versions.count > 1,
                ])
                return
            }
            let regions = Dictionary(grouping: records, by: \.region)
            for (region, nodes) in regions.sorted(by: { $0.key < $1.key }) {
                let states = Dictionary(grouping: nodes, by: \.state).map { "\($0.value.count) \($0.key.rawValue)" }.sorted().joined(separator: ", ")
                print("region \(region.isEmpty ? "-" : region): \(nodes.count) node(s): \(states)")
            }
            printTable(
                ["NODE", "REGION", "ZONE", "STATE", "HEALTH", "RPS", "P99_MS", "DEFS_VERSION", "LAST_INVALIDATION"],
                records.map {
                    [
                        $0.id, $0.region, $0.zone, $0.state.rawValue, $0.health.rawValue, String(format: "%.1f", $0.requestsPerSecond),
                        String(format: "%.1f", $0.p99Milliseconds), String($0.definitionsVersion.prefix(12)), $0.lastInvalidation,
                    ]
                })
            if records.isEmpty { print("no nodes registered") }
            print(versions.count > 1 ? "definitions drift: \(versions.count) different versions across nodes" : "definitions: consistent")
        }
    }
}

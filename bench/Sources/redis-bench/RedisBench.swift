import ArgumentParser
import Foundation
import GatewayCore
import Logging
import NIOCore
import NIOPosix

/// Drives GET or SET through our Redis client the way `redis-benchmark` does: N connections, each
/// keeping `pipeline` commands in flight, until `requests` commands are done; prints ops/s.
@main
struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-bench", abstract: "Throughput of the gateway-cluster Redis client (see bench/redis-client.sh).")

    @Option(help: "Redis URL.") var url = "redis://127.0.0.1:6379"
    @Option(help: "Connections (concurrent clients).") var connections = 50
    @Option(help: "Commands per pipelined batch.") var pipeline = 1
    @Option(help: "Total commands.") var requests = 200_000
    @Option(help: "get or set.") var command = "get"
    @Option(help: "Value size in bytes for SET.") var dataSize = 3
    @Option(help: "Event loop threads.") var threads = 1
    @Flag(
        help:
            "The URL is a node of a Redis Cluster: commands go through RedisClient, each to its key's node, with random keys (like redis-benchmark --cluster -r)."
    )
    var cluster = false
    @Option(help: "With --cluster: keys are key:0 ... key:<keyspace - 1>.") var keyspace = 100_000
    @Option(help: "With a rediss:// URL: PEM file of the CAs Redis's certificate chains to.") var caFile: String?

    func run() async throws {
        if cluster { return try await runOnCluster() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var configuration = RedisConfiguration(url: try RedisURL(parsing: url))
        configuration.commandTimeout = .seconds(30)
        configuration.tls.caFile = caFile
        var clients: [RedisConnection] = []
        for i in 0..<connections {
            clients.append(try await RedisConnection.connect(configuration: configuration, eventLoop: group.next(), id: i))
        }
        let value = String(repeating: "x", count: dataSize)
        let key = "key:__rand_int__"
        let make: () -> RedisCommand =
            command == "set"
            ? { RedisCommand("SET", .string(key), .string(value)) }
            : { RedisCommand("GET", .string(key)) }
        // One encoded batch per client, reused: the benchmark measures the client, not command building.
        let batch = (0..<pipeline).map { _ in make() }
        let connected = clients
        try await measure(loops: connected.map(\.eventLoop), mode: "connections") { worker, _ in
            let client = connected[worker]
            if pipeline == 1 {
                _ = try await client.send(batch[0])
            } else {
                _ = try await client.pipeline(batch)
            }
        }
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    /// `connections` tasks, each keeping one command (or one pipelined batch) in flight through a cluster
    /// `RedisClient`, as the services use it: the tasks of an event loop share that loop's connection to
    /// each node, and a batch is split by node. Keys are random over `keyspace`, so every master serves a
    /// share.
    func runOnCluster() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var configuration = RedisConfiguration(url: try RedisURL(parsing: url))
        configuration.cluster = true
        configuration.commandTimeout = .seconds(30)
        var logger = Logger(label: "redis-bench")
        logger.logLevel = .warning
        let client = RedisClient(configuration: configuration, eventLoopGroup: group, logger: logger)
        let value = String(repeating: "x", count: dataSize)
        // Commands built up front with random keys and cycled: the benchmark measures the client.
        var generator = SystemRandomNumberGenerator()
        let commands: [RedisCommand] = (0..<4096).map { _ in
            let key = "key:\(Int.random(in: 0..<keyspace, using: &generator))"
            return command == "set" ? RedisCommand("SET", .string(key), .string(value)) : RedisCommand("GET", .string(key))
        }
        // Wait for the layout, so the run does not measure the first MOVED redirections.
        for command in commands.prefix(64) { _ = try await client.send(command) }
        try await measure(loops: (0..<connections).map { _ in group.next() }, mode: "tasks, cluster") { worker, iteration in
            let first = (worker * 97 + iteration * pipeline) % commands.count
            if pipeline == 1 {
                _ = try await client.send(commands[first])
            } else {
                _ = try await client.pipeline((0..<pipeline).map { commands[(first + $0) % commands.count] })
            }
        }
        await client.shutdown()
        try await group.shutdownGracefully()
    }

    /// Runs one task per entry of `loops` on that loop's executor (as the engine runs its Redis calls: no
    /// hop to the global executor and back for every reply), each calling `step(worker, iteration)` until
    /// its share of `requests` (`pipeline` commands per step) is done, and prints the rate.
    private func measure(
        loops: [any EventLoop], mode: String, _ step: @escaping @Sendable (_ worker: Int, _ iteration: Int) async throws -> Void
    ) async throws {
        let perWorker = requests / loops.count / pipeline
        let executors = EventLoopTaskExecutor.PerLoop()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Int.self) { tasks in
            for (worker, loop) in loops.enumerated() {
                tasks.addTask(executorPreference: executors.executor(for: loop)) {
                    for iteration in 0..<perWorker { try await step(worker, iteration) }
                    return perWorker * pipeline
                }
            }
            var total = 0
            for try await n in tasks { total += n }
            let elapsed = (ContinuousClock.now - start).seconds
            print(
                String(
                    format: "%@: %.0f requests per second (%d in %.2fs, %d %@, pipeline %d)", command.uppercased(), Double(total) / elapsed, total,
                    elapsed, loops.count, mode, pipeline))
        }
    }
}

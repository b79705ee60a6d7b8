import ArgumentParser
import Foundation
import GatewayCore
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

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var configuration = RedisConfiguration(url: try RedisURL(parsing: url))
        configuration.commandTimeout = .seconds(30)
        var clients: [RedisConnection] = []
        for i in 0..<connections {
            clients.append(try await RedisConnection.connect(configuration: configuration, eventLoop: group.next(), id: i))
        }
        let value = String(repeating: "x", count: dataSize)
        let key = "key:__rand_int__"
        let make: () -> RedisCommand = command == "set"
            ? { RedisCommand("SET", .string(key), .string(value)) }
            : { RedisCommand("GET", .string(key)) }
        // One encoded batch per client, reused: the benchmark measures the client, not command building.
        let batch = (0..<pipeline).map { _ in make() }
        let perClient = requests / connections / pipeline
        let start = ContinuousClock.now
        // Each connection's loop runs its task (as the engine runs its Redis calls): no hop to the global
        // executor and back for every reply.
        let executors = EventLoopTaskExecutor.PerLoop()
        try await withThrowingTaskGroup(of: Int.self) { tasks in
            for client in clients {
                tasks.addTask(executorPreference: executors.executor(for: client.eventLoop)) {
                    var done = 0
                    for _ in 0..<perClient {
                        if pipeline == 1 {
                            _ = try await client.send(batch[0])
                        } else {
                            _ = try await client.pipeline(batch)
                        }
                        done += pipeline
                    }
                    return done
                }
            }
            var total = 0
            for try await n in tasks { total += n }
            let elapsed = (ContinuousClock.now - start).seconds
            print(String(format: "%@: %.0f requests per second (%d in %.2fs, %d connections, pipeline %d)", command.uppercased(), Double(total) / elapsed, total, elapsed, connections, pipeline))
        }
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }
}

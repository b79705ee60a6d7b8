import Configuration
import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import ServiceLifecycle

@testable import NodeAgent

/// The agent's admin token in every test.
let agentToken = "agent-admin-token-0123456789"

/// A fresh temporary directory for one test; remove it with ``removeDirectory(_:)``.
func makeTemporaryDirectory(_ name: String = "agent") throws -> String {
    let root = ProcessInfo.processInfo.environment["GC_TEST_TMPDIR"] ?? NSTemporaryDirectory()
    let path = URL(fileURLWithPath: root).appendingPathComponent("gc-\(name)-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// Runs `body` with a fresh temporary directory, removed afterwards.
func withTemporaryDirectory<T>(
    isolation: isolated (any Actor)? = #isolation, _ body: (String) async throws -> T
) async throws -> T {
    let directory = try makeTemporaryDirectory()
    defer { removeDirectory(directory) }
    return try await body(directory)
}

/// The configuration keys a test agent runs with: fast heartbeats, its own state file, admin on a free
/// port.
func agentOverrides(
    redis: RedisServerProcess, engine: FakeEngine, node: String, directory: String, heartbeat: String = "200ms"
) -> [String: String] {
    [
        "redis.url": "redis://127.0.0.1:\(redis.port)",
        "redis.connectTimeout": "1s",
        "redis.commandTimeout": "1s",
        "redis.leaseTimeout": "1s",
        "admin.token": agentToken,
        "admin.port": "0",
        "node.id": node,
        "node.region": "eu-west",
        "node.zone": "eu-west-1a",
        "node.address": "10.0.0.7",
        "node.port": "8443",
        "node.weight": "40",
        "node.labels": "tier=gold,rack=r7",
        "engine.adminURL": engine.adminURL,
        "engine.token": engine.token,
        "heartbeat.interval": heartbeat,
        "engine.probeTimeout": "150ms",
        "state.file": "\(directory)/\(node).state",
        "drain.deadline": "3s",
        "drain.grace": "0s",
        "invalidations.block": "500ms",
    ]
}

/// Reads settings through the real configuration path (the validator `--check-config` uses).
func readSettings(_ overrides: [String: String], environment: [String: String] = [:]) async throws -> AgentSettings {
    let sources = ConfigSources(overrides: overrides, environmentPrefix: NodeAgentMain.environmentPrefix, environment: environment)
    var validator = ConfigValidator(try await sources.makeReader())
    let settings = AgentSettings.read(&validator, environment: environment, hostname: "test-host")
    try validator.finish()
    return settings
}

/// An agent running in this process with its admin listener, in a `ServiceGroup` as the binary runs it.
final class RunningAgent: Sendable {
    let agent: NodeAgent
    let admin: AdminHTTPServer
    let redis: RedisClient
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(agent: NodeAgent, admin: AdminHTTPServer, redis: RedisClient, group: ServiceGroup, task: Task<Void, any Error>) {
        self.agent = agent
        self.admin = admin
        self.redis = redis
        self.group = group
        self.task = task
    }

    static func start(_ settings: AgentSettings, logger: Logger = .forTesting("node-agent")) -> RunningAgent {
        let redis = RedisClient(configuration: settings.common.redis, logger: logger)
        let agent = NodeAgent(settings: settings, redis: redis, logger: logger)
        var router = AdminRouter()
        agent.addRoutes(to: &router)
        let admin = AdminHTTPServer(settings: settings.common.admin, router: router, metricsPrefix: "node_agent", logger: logger)
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: admin, successTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = settings.common.shutdownDeadline
        let group = ServiceGroup(configuration: configuration)
        // Owned by this object and awaited in stop() or kill().
        let task = Task { try await group.run() }
        return RunningAgent(agent: agent, admin: admin, redis: redis, group: group, task: task)
    }

    /// What SIGTERM does: drain, deregister, stop.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
        await redis.shutdown()
    }

    /// Stops without draining, as if the process died: the record stays until its lease expires.
    func kill() async {
        task.cancel()
        _ = try? await task.value
        await redis.shutdown()
    }

    var adminURL: String {
        get async throws { "http://127.0.0.1:\(try await admin.listeningAddress.port ?? 0)" }
    }
}

/// Runs `body` with an in-process agent, stopped gracefully afterwards (killed if `body` throws).
func withAgent<T>(
    _ settings: AgentSettings, logger: Logger = .forTesting("node-agent"), isolation: isolated (any Actor)? = #isolation,
    _ body: (RunningAgent) async throws -> T
) async throws -> T {
    let running = RunningAgent.start(settings, logger: logger)
    do {
        let result = try await body(running)
        try await running.stop()
        return result
    } catch {
        await running.kill()
        throw error
    }
}

/// Records what is published on the events channel.
final class EventLog: Sendable {
    private let recorder: EventRecorder<RedisPubSubEvent>
    private let task: Task<Void, Never>

    private init(recorder: EventRecorder<RedisPubSubEvent>, task: Task<Void, Never>) {
        self.recorder = recorder
        self.task = task
    }

    /// Subscribes to the events channel and returns once the subscription is in place.
    static func start(_ server: RedisServerProcess, keys: ClusterKeys = ClusterKeys()) async throws -> EventLog {
        let subscriber = RedisSubscriber(configuration: server.configuration(), channels: [keys.events], logger: .forTesting("events"))
        let recorder = EventRecorder<RedisPubSubEvent>()
        // Owned by the log and awaited in stop().
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await subscriber.run() }
                group.addTask { await recorder.record(subscriber.events) }
                await group.waitForAll()
            }
        }
        let log = EventLog(recorder: recorder, task: task)
        try await waitUntil("the event subscription") { await recorder.contains(.subscribed(resync: false)) }
        return log
    }

    /// The cluster events received so far, in order.
    var events: [ClusterEvent] {
        get async {
            await recorder.elements.compactMap {
                if case .message(_, let payload) = $0 { return ClusterEvent(json: payload) }
                return nil
            }
        }
    }

    func stop() async {
        task.cancel()
        await task.value
    }
}

/// A node's record fields (empty when it does not exist).
func nodeRecord(_ redis: RedisClient, _ node: String, keys: ClusterKeys = ClusterKeys()) async throws -> [String: String] {
    try await redis.hgetall(keys.node(node))
}

/// Whether the node's record exists and says `field` is `value`.
func nodeRecord(_ redis: RedisClient, _ node: String, has field: NodeRecord.Field, _ value: String) async throws -> Bool {
    try await nodeRecord(redis, node)[field.rawValue] == value
}

/// Runs `body` with an ``EventLog`` of `server`'s events channel, stopped afterwards.
func withEventLog<T>(
    _ server: RedisServerProcess, isolation: isolated (any Actor)? = #isolation, _ body: (EventLog) async throws -> T
) async throws -> T {
    let log = try await EventLog.start(server)
    do {
        let result = try await body(log)
        await log.stop()
        return result
    } catch {
        await log.stop()
        throw error
    }
}

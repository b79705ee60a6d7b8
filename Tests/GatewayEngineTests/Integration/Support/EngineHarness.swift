import Foundation
import GatewayCore
import GatewayTesting
import Logging
import ServiceLifecycle
import Synchronization
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

/// Engine integration tests run one at a time: they measure time (propagation within 1 s, 408 within the
/// header-read timeout) and count backend requests, which parallel load on a small machine would blur.
@Suite(.serialized) enum EngineIntegration {}

/// One engine running in this process: its ports, and helpers for its data and admin listeners.
final class RunningEngine: Sendable {
    static let adminToken = "integration-admin-token-0123456789"

    let engine: GatewayEngine
    /// The data listener's port.
    let port: Int
    let adminPort: Int

    init(engine: GatewayEngine, port: Int, adminPort: Int) {
        self.engine = engine
        self.port = port
        self.adminPort = adminPort
    }

    /// A request to the data listener.
    func send(
        _ method: HTTPMethod = .GET, _ path: String, headers: [(String, String)] = [], body: String? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> TestResponse {
        try await TestHTTP.send(method, port: port, path, headers: headers, body: body, timeout: timeout)
    }

    /// A request to the admin listener, with the bearer token unless `token` says otherwise (nil: none).
    func admin(
        _ method: HTTPMethod, _ path: String, json: String? = nil, token: String? = RunningEngine.adminToken
    ) async throws -> TestResponse {
        var headers: [(String, String)] = []
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if json != nil { headers.append(("Content-Type", "application/json")) }
        return try await TestHTTP.send(method, port: adminPort, path, headers: headers, body: json)
    }

    /// The store version of the definitions this engine serves (nil before the first load).
    var definitionsVersion: Int64? { engine.holder.snapshot.storeVersion?.counter }
}

/// Engines sharing one real `redis-server`, and the backends tests put behind them.
struct EngineCluster: Sendable {
    let redis: RedisServerProcess
    /// The Redis Cluster, when the engines run on one (`redis` is then its first node).
    var redisCluster: RedisClusterProcess? = nil
    let engines: [RunningEngine]

    var first: RunningEngine { engines[0] }

    /// Writes an API definition through the first engine's admin API and waits until every engine serves
    /// it (or a later version); returns the store version the write produced.
    @discardableResult
    func putAPI(_ json: String, through engine: RunningEngine? = nil, waitForAll: Bool = true) async throws -> Int64 {
        let via = engine ?? first
        let id = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["id"] as? String ?? ""
        let response = try await via.admin(.PUT, "/apis/\(id)", json: json)
        guard response.status == 200, let text = response.string("version"), let version = Int64(text) else {
            throw HarnessError.admin("PUT /apis/\(id)", response)
        }
        if waitForAll { try await waitForVersion(version) }
        return version
    }

    /// Waits until every engine serves definitions of at least `version`.
    func waitForVersion(_ version: Int64, timeout: Duration = .seconds(5)) async throws {
        try await waitUntil("every engine to load definitions version \(version)", timeout: timeout) {
            engines.allSatisfy { ($0.definitionsVersion ?? 0) >= version }
        }
    }

    /// Creates an API key through the first engine's admin API; returns the plain key and its id.
    func createKey(_ json: String) async throws -> (key: String, id: String) {
        let response = try await first.admin(.POST, "/keys", json: json)
        guard response.status == 201, let key = response.string("key"),
            let record = response.json?["record"] as? [String: any Sendable], let id = record["id"] as? String
        else { throw HarnessError.admin("POST /keys", response) }
        return (key, id)
    }
}

enum HarnessError: Error, CustomStringConvertible {
    case admin(String, TestResponse)
    case configuration(String)

    var description: String {
        switch self {
        case .admin(let call, let response): return "\(call) failed: \(response)"
        case .configuration(let problems): return "invalid engine configuration: \(problems)"
        }
    }
}

/// Builds an engine configuration the way the binary does (through `EngineConfiguration.read`), for a
/// loopback engine on free ports with the given Redis and `settings` on top of test defaults.
func engineConfiguration(redisPort: Int, settings: [String: String] = [:]) async throws -> EngineConfiguration {
    var values = [
        "listen.port": "0", "admin.port": "0", "admin.token": RunningEngine.adminToken,
        "redis.url": "redis://127.0.0.1:\(redisPort)", "log.access": "false", "log.level": "warning",
        "apis.versionCheckInterval": "100ms", "redis.poolSize": "8",
        // Generous Redis deadlines: tests count exact outcomes (20 × 200, 80 × 429), and on a loaded CI
        // machine a rate-limit call past the 250 ms default fails closed (503) and breaks the count. Tests
        // about timeouts and outages set their own.
        "ratelimit.redisTimeout": "5s", "redis.commandTimeout": "5s",
    ]
    values.merge(settings) { _, new in new }
    let reader = try await ConfigSources(overrides: values, environmentPrefix: ["gc", "engine"], environment: [:]).makeReader()
    var validator = ConfigValidator(reader)
    var configuration = EngineConfiguration.read(&validator)
    if !validator.problems.isEmpty { throw HarnessError.configuration("\(validator.problems)") }
    // A restarted Redis is found again within a fraction of a second.
    configuration.common.redis.initialBackoff = .milliseconds(20)
    configuration.common.redis.maxBackoff = .milliseconds(200)
    return configuration
}

/// Runs `count` engines (sharing a fresh `redis-server`) while `body` runs, then stops them, their Redis
/// clients and upstream pools, and the server.
///
/// ```swift
/// try await withEngines(count: 2) { cluster in
///     try await cluster.putAPI(#"{"id":"a","listen_path":"/a","targets":[{"url":"http://127.0.0.1:9000"}]}"#)
///     let response = try await cluster.engines[1].send(.GET, "/a/x")
/// }
/// ```
///
/// - Parameters:
///   - count: how many engines.
///   - settings: configuration keys for every engine (`limits.maxBodyBytes`, ...).
///   - body: the test.
///   - onRedisCluster: run on a fresh three-master Redis Cluster (``RedisClusterProcess``) instead of
///     one server; `EngineCluster.redis` is then its first node.
func withEngines<T: Sendable>(
    count: Int = 1, settings: [String: String] = [:], onRedisCluster: Bool = false, accessLogs: InMemoryLogHandler.Store? = nil,
    isolation: isolated (any Actor)? = #isolation, _ body: (EngineCluster) async throws -> T
) async throws -> T {
    guard onRedisCluster else {
        return try await withRedisServer { redis in
            try await runEngines(count: count, redis: redis, settings: settings, accessLogs: accessLogs, body)
        }
    }
    return try await withRedisCluster { cluster in
        var clusterSettings = settings
        clusterSettings["redis.cluster"] = "true"
        clusterSettings["redis.clusterSeeds"] = cluster.nodes.dropFirst().map { "\($0.host):\($0.port)" }.joined(separator: ",")
        return try await runEngines(count: count, redis: cluster.nodes[0], redisCluster: cluster, settings: clusterSettings, body)
    }
}

private func runEngines<T: Sendable>(
    count: Int, redis: RedisServerProcess, redisCluster: RedisClusterProcess? = nil, settings: [String: String],
    accessLogs: InMemoryLogHandler.Store? = nil, isolation: isolated (any Actor)? = #isolation,
    _ body: (EngineCluster) async throws -> T
) async throws -> T {
    var engines: [GatewayEngine] = []
    for _ in 0..<count {
        let configuration = try await engineConfiguration(redisPort: redis.port, settings: settings)
        engines.append(
            GatewayEngine(
                configuration: configuration, logger: .forTesting("engine"), accessLogger: accessLogs?.logger(label: "gateway-engine.access")))
    }
    defer { for engine in engines { engine.pools.closeAll() } }
    let result: Result<T, any Error> = await withTaskGroup(of: Void.self) { group in
        for engine in engines {
            for service in engine.services {
                group.addTask { try? await service.run() }
            }
        }
        let outcome: Result<T, any Error>
        do {
            var running: [RunningEngine] = []
            for engine in engines {
                let port = try await engine.front.listeningAddress.port ?? 0
                let adminPort = try await engine.admin.listeningAddress.port ?? 0
                running.append(RunningEngine(engine: engine, port: port, adminPort: adminPort))
            }
            try await waitUntil("every engine to load its definitions", timeout: .seconds(10)) {
                running.allSatisfy { $0.definitionsVersion != nil }
            }
            outcome = .success(try await body(EngineCluster(redis: redis, redisCluster: redisCluster, engines: running)))
        } catch {
            outcome = .failure(error)
        }
        group.cancelAll()
        await group.waitForAll()
        return outcome
    }
    for engine in engines { await engine.redis.shutdown() }
    return try result.get()
}

/// Starts test backends named `names`, runs `body` with them, and stops them.
func withBackends<T>(
    _ names: [String], isolation: isolated (any Actor)? = #isolation, _ body: ([TestHTTPBackend]) async throws -> T
) async throws -> T {
    var backends: [TestHTTPBackend] = []
    do {
        for name in names { backends.append(try await TestHTTPBackend.start(name: name)) }
        let result = try await body(backends)
        for backend in backends { await backend.stop() }
        return result
    } catch {
        for backend in backends { await backend.stop() }
        throw error
    }
}

/// An API definition as JSON, for the admin API.
///
/// - Parameters:
///   - targets: backend ports (each becomes `http://127.0.0.1:<port>`), or full URLs in `urls`.
///   - extra: more top-level fields, as JSON text without braces (`"auth": {"mode": "api_key"}`).
func apiJSON(
    _ id: String, path: String? = nil, hosts: [String] = [], strip: Bool = false, targets: [Int] = [], urls: [String] = [],
    extra: String? = nil
) -> String {
    let all = targets.map { "http://127.0.0.1:\($0)" } + urls
    var fields = [
        "\"id\":\"\(id)\"",
        "\"targets\":[" + all.map { "{\"url\":\"\($0)\"}" }.joined(separator: ",") + "]",
        "\"strip_listen_path\":\(strip)",
    ]
    if let path { fields.append("\"listen_path\":\"\(path)\"") }
    if !hosts.isEmpty { fields.append("\"hosts\":[" + hosts.map { "\"\($0)\"" }.joined(separator: ",") + "]") }
    if let extra { fields.append(extra) }
    return "{" + fields.joined(separator: ",") + "}"
}

/// A value shared by the tasks of a test (counters of a load loop).
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}

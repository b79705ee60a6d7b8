import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

@testable import EdgeBalancer

/// A whole edge balancer running in-process on loopback ports picked by the kernel.
struct RunningBalancer: Sendable {
    static let token = "test-admin-token-0123456789"

    let app: BalancerApp
    let port: Int
    let adminPort: Int

    /// Calls the admin API with the bearer token.
    func admin(_ method: HTTPMethod, _ path: String, json: String? = nil, token: String? = RunningBalancer.token) async throws -> HTTPResponse {
        var headers: HTTPHeaders = [:]
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if json != nil { headers.add(name: "Content-Type", value: "application/json") }
        return try await AdminHTTPClient(timeout: .seconds(5)).request(
            method, "http://127.0.0.1:\(adminPort)\(path)", headers: headers, body: json.map { ByteBuffer(string: $0) })
    }

    /// `GET /nodes`, decoded.
    func nodes() async throws -> NodesReport {
        let response = try await admin(.GET, "/nodes")
        return try JSONDecoder().decode(NodesReport.self, from: Data(response.body.readableBytesView))
    }

    func load(requests: Int, concurrency: Int = 8, timeLimit: Duration = .seconds(20)) async -> LoadClient.Result {
        await LoadClient(port: port, concurrency: concurrency, requests: requests, timeLimit: timeLimit).run()
    }

    /// Waits until the controller's table has `usable` usable nodes.
    func waitForUsable(_ usable: Int, timeout: Duration = .seconds(5)) async throws {
        try await waitUntil("\(usable) usable nodes", timeout: timeout) {
            await app.controller.currentPlan.usableCount == usable
        }
    }
}

/// Settings for a test balancer: loopback ports 0, a test token, fast health checks, no slow start,
/// no access log, plus `overrides`.
func testBalancerSettings(_ overrides: [String: String]) async throws -> BalancerSettings {
    var all: [String: String] = [
        "admin.token": RunningBalancer.token, "admin.port": "0", "listen.port": "0",
        "health.interval": "100ms", "health.timeout": "500ms", "slowStart.window": "0", "accessLog.level": "off",
        "discovery.resyncInterval": "200ms", "shutdown.deadline": "5s",
    ]
    all.merge(overrides) { _, new in new }
    return try await balancerSettings(all)
}

/// Runs a balancer for the length of `body`, then shuts it down gracefully.
func withBalancer<T: Sendable>(
    _ overrides: [String: String], seed: UInt64? = 1, logger: Logger = .forTesting("balancer"),
    _ body: @Sendable (RunningBalancer) async throws -> T
) async throws -> T {
    let settings = try await testBalancerSettings(overrides)
    let app = try BalancerApp(settings: settings, logger: logger, seed: seed)
    let group = ServiceGroup(configuration: .init(services: app.services.map { .init(service: $0) }, logger: logger))
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let port = try await app.front.listeningAddress.port!
            let adminPort = try await app.admin.listeningAddress.port!
            let balancer = RunningBalancer(app: app, port: port, adminPort: adminPort)
            let result = try await body(balancer)
            await group.triggerGracefulShutdown()
            try await tasks.next()
            await app.shutdown()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await tasks.next()
            await app.shutdown()
            throw error
        }
    }
}

/// Starts backends `ids` (with optional delays), runs `body`, kills them all.
func withBackends<T>(
    _ ids: [String], delays: [String: Duration] = [:], isolation: isolated (any Actor)? = #isolation,
    _ body: ([TestBackend]) async throws -> T
) async throws -> T {
    var backends: [TestBackend] = []
    do {
        for id in ids { backends.append(try await TestBackend.start(id: id, delay: delays[id] ?? .zero)) }
        let result = try await body(backends)
        for backend in backends { await backend.kill() }
        return result
    } catch {
        for backend in backends { await backend.kill() }
        throw error
    }
}

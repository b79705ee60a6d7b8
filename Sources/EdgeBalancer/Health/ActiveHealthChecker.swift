import GatewayCore
import Logging
import NIOHTTP1
import ServiceLifecycle

/// Active HTTP health checks: every `interval`, a `GET path` to each known node, all nodes in parallel,
/// each bounded by `timeout`. A check passes when the status is one of the expected ones. Results go to
/// the controller, whose rise/fall state machines decide health; the round trips also tell locality how
/// far each region is.
final class ActiveHealthChecker: Service, Sendable {
    struct Configuration: Sendable {
        var enabled = true
        /// The engine's data listener answers this itself (`listen.healthPath`).
        var path = "/__gateway/health"
        var interval: Duration = .seconds(1)
        var timeout: Duration = .milliseconds(500)
        var expectedStatus = StatusMatcher(ranges: [200...299])
    }

    private let configuration: Configuration
    private let controller: BalancerController
    /// The client of the checks; with `upstream.tls` it has the TLS context requests use.
    private let client: AdminHTTPClient
    private let logger: Logger

    init(configuration: Configuration, controller: BalancerController, client: AdminHTTPClient? = nil, logger: Logger) {
        self.configuration = configuration
        self.controller = controller
        self.client = client ?? AdminHTTPClient(timeout: configuration.timeout, maxResponseBytes: 64 * 1024)
        self.logger = logger
    }

    func run() async throws {
        guard configuration.enabled else {
            try? await gracefulShutdown()
            return
        }
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    let targets = await self.controller.probeTargets()
                    let results = await self.probeAll(targets)
                    await self.controller.record(results)
                    try await Task.sleep(for: self.configuration.interval)
                }
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }

    func probeAll(_ targets: [UpstreamTarget]) async -> [ProbeResult] {
        await withTaskGroup(of: ProbeResult.self) { group in
            for target in targets {
                group.addTask { await self.probe(target) }
            }
            var results: [ProbeResult] = []
            for await result in group { results.append(result) }
            return results
        }
    }

    /// One check of one node.
    func probe(_ target: UpstreamTarget) async -> ProbeResult {
        let host = target.host.contains(":") ? "[\(target.host)]" : target.host
        let url = "\(target.tls ? "https" : "http")://\(host):\(target.port)\(configuration.path)"
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let response = try await client.request(.GET, url, headers: ["User-Agent": "edge-balancer-health-check"])
            let latency = clock.now - start
            let passed = configuration.expectedStatus.matches(Int(response.status.code))
            return ProbeResult(node: target.id, passed: passed, latency: latency, detail: passed ? "ok" : "status \(response.status.code)")
        } catch {
            return ProbeResult(node: target.id, passed: false, latency: nil, detail: "\(error)")
        }
    }
}

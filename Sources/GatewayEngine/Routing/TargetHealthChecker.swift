import GatewayCore
import Logging
import Metrics
import NIOHTTP1
import ServiceLifecycle

/// Active health checks of the targets of APIs with a `health_check` (``APIDefinition/HealthCheck``).
///
/// One loop per engine: each pass reads the serving route table, probes the targets whose check is due
/// (all in parallel, each bounded by its API's timeout), and feeds the results to one rise/fall state
/// machine per (API, target, check settings) (``ActiveHealthCheck``). A target that turns unhealthy
/// leaves its API's rotation (``TargetBalancer/setHealthy(_:_:)``) and one that turns healthy rejoins
/// it; each pass also puts the state on the current table's balancers, so a route rebuilt with new
/// targets learns at once which of them are down. State for targets no API checks any more is dropped,
/// and such a target is put back in rotation (a route rebuilt without its check keeps its balancer).
///
/// Transitions are logged (`warning` when a target turns unhealthy, `notice` when it recovers) and shown
/// by `gc_engine_target_healthy{api,target}` (1 or 0).
final class TargetHealthChecker: Service, Sendable {
    private let holder: RouteTableHolder
    /// The client TLS `https://` targets are checked with (the one requests use).
    private let tls: ClientTLSContextBox?
    private let logger: Logger
    /// The longest pause between passes, so a definition that gains a check is probed soon.
    private let maxPause: Duration

    init(holder: RouteTableHolder, tls: ClientTLSContextBox?, maxPause: Duration = .milliseconds(500), logger: Logger) {
        self.holder = holder
        self.tls = tls
        self.maxPause = maxPause
        self.logger = logger
    }

    /// One target's checks.
    private struct Key: Hashable {
        var api: String
        var target: String
        var check: APIDefinition.HealthCheck
    }

    private struct Tracked {
        var state: ActiveHealthCheck
        var due: ContinuousClock.Instant
        var gauge: Gauge
    }

    private struct Probe: Sendable {
        var key: Key
        var url: String
        var timeout: Duration
        var expected: StatusMatcher
    }

    func run() async throws {
        let clock = ContinuousClock()
        do {
            try await cancelWhenGracefulShutdown {
                var tracked: [Key: Tracked] = [:]
                while true {
                    let now = clock.now
                    var probes: [Probe] = []
                    var seen = Set<Key>()
                    for route in self.holder.table.routes.values {
                        guard let check = route.definition.healthCheck, let expected = StatusMatcher(check.expectedStatus) else { continue }
                        for (index, url) in route.balancer.targets.enumerated() {
                            let key = Key(api: route.id, target: url.target.id, check: check)
                            seen.insert(key)
                            var entry =
                                tracked[key]
                                ?? Tracked(
                                    state: ActiveHealthCheck(rise: check.healthyThreshold, fall: check.unhealthyThreshold), due: now,
                                    gauge: Gauge(label: "gc_engine_target_healthy", dimensions: [("api", route.id), ("target", url.target.id)]))
                            route.balancer.setHealthy(index, entry.state.isHealthy)
                            if entry.due <= now {
                                entry.due = now + .seconds(check.intervalSeconds)
                                let scheme = url.tls ? "https" : "http"
                                probes.append(
                                    Probe(
                                        key: key, url: "\(scheme)://\(url.authority)\(check.path)",
                                        timeout: .milliseconds(check.timeoutMilliseconds), expected: expected))
                            }
                            tracked[key] = entry
                        }
                    }
                    // Checks no definition asks for any more (the API deleted, the target or the check removed or
                    // changed): their verdict goes with them, even on a balancer a rebuilt route kept.
                    for key in tracked.keys where !seen.contains(key) {
                        tracked[key] = nil
                        self.apply(key, healthy: true)
                    }

                    for (key, passed, detail) in await self.probeAll(probes) {
                        guard var entry = tracked[key] else { continue }
                        let transition = entry.state.record(passed: passed)
                        entry.gauge.record(entry.state.isHealthy ? 1 : 0)
                        tracked[key] = entry
                        self.apply(key, healthy: entry.state.isHealthy)
                        switch transition {
                        case .becameUnhealthy:
                            self.logger.warning(
                                "backend target unhealthy: out of rotation",
                                metadata: ["api": "\(key.api)", "target": "\(key.target)", "check.detail": "\(detail)"])
                        case .becameHealthy:
                            self.logger.notice("backend target healthy again", metadata: ["api": "\(key.api)", "target": "\(key.target)"])
                        case .none:
                            break
                        }
                    }
                    let next = tracked.values.map(\.due).min() ?? clock.now + self.maxPause
                    let pause = min(max(next - clock.now, .milliseconds(10)), self.maxPause)
                    try await Task.sleep(for: pause)
                }
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }

    /// Puts a check's verdict on the serving table's route for its API, if the target is still there.
    private func apply(_ key: Key, healthy: Bool) {
        guard let route = holder.table.routes[key.api],
            let index = route.balancer.targets.firstIndex(where: { $0.target.id == key.target })
        else { return }
        route.balancer.setHealthy(index, healthy)
    }

    private func probeAll(_ probes: [Probe]) async -> [(Key, Bool, String)] {
        await withTaskGroup(of: (Key, Bool, String).self) { group in
            for probe in probes {
                group.addTask {
                    let client = AdminHTTPClient(timeout: probe.timeout, maxResponseBytes: 64 * 1024, tls: self.tls)
                    do {
                        let response = try await client.request(.GET, probe.url, headers: ["User-Agent": "gateway-engine-health-check"])
                        let code = Int(response.status.code)
                        return (probe.key, probe.expected.matches(code), "status \(code)")
                    } catch {
                        return (probe.key, false, "\(error)")
                    }
                }
            }
            var results: [(Key, Bool, String)] = []
            for await result in group { results.append(result) }
            return results
        }
    }
}

import GatewayCore
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOHTTP1
import ServiceLifecycle

/// Active health checks of the targets of APIs with a `health_check` (``APIDefinition/HealthCheck``).
///
/// One loop per engine: each pass reads the serving route table, starts a probe of each target whose
/// check is due (each on its own task, bounded by its API's timeout, one at a time per target), and
/// feeds the probes that finished to one rise/fall state machine per (API, target, check settings)
/// (``ActiveHealthCheck``). A target that turns unhealthy
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
        /// A probe of it is running (a target is never probed twice at once).
        var probing = false
    }

    private struct Probe: Sendable {
        var key: Key
        var url: String
        var timeout: Duration
        var expected: StatusMatcher
    }

    /// A finished probe: its key, whether it passed, and what was seen (for the log).
    private typealias Result = (key: Key, passed: Bool, detail: String)

    func run() async throws {
        let clock = ContinuousClock()
        // Probes run on their own and leave their results here for the next pass: a target slow to answer
        // (up to its API's timeout, 60 s at most) holds up no other target's checks.
        let finished = NIOLockedValueBox<[Result]>([])
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    var tracked: [Key: Tracked] = [:]
                    while true {
                        for result in finished.withLockedValue({ results in
                            defer { results.removeAll() }; return results
                        }) {
                            self.record(result, in: &tracked)
                        }
                        let now = clock.now
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
                                if entry.due <= now && !entry.probing {
                                    entry.due = now + .seconds(check.intervalSeconds)
                                    entry.probing = true
                                    let probe = Probe(
                                        key: key, url: "\(url.tls ? "https" : "http")://\(url.authority)\(check.path)",
                                        timeout: .milliseconds(check.timeoutMilliseconds), expected: expected)
                                    group.addTask {
                                        let result = await self.probe(probe)
                                        finished.withLockedValue { $0.append(result) }
                                    }
                                }
                                tracked[key] = entry
                            }
                        }
                        // Checks no definition asks for any more (the API deleted, the target or the check removed
                        // or changed): their verdict goes with them, even on a balancer a rebuilt route kept.
                        for key in tracked.keys where !seen.contains(key) {
                            let gauge = tracked.removeValue(forKey: key)?.gauge
                            self.apply(key, healthy: true)
                            // Its series goes too, unless a changed check of the same target still reports it.
                            if !tracked.keys.contains(where: { $0.api == key.api && $0.target == key.target }) { gauge?.destroy() }
                        }
                        let next = tracked.values.filter { !$0.probing }.map(\.due).min() ?? clock.now + self.maxPause
                        try await Task.sleep(for: min(max(next - clock.now, .milliseconds(10)), self.maxPause))
                    }
                }
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }

    /// Feeds a finished probe to its target's state machine, and its verdict to the serving route.
    private func record(_ result: Result, in tracked: inout [Key: Tracked]) {
        guard var entry = tracked[result.key] else { return }  // no longer checked
        entry.probing = false
        let transition = entry.state.record(passed: result.passed)
        entry.gauge.record(entry.state.isHealthy ? 1 : 0)
        tracked[result.key] = entry
        apply(result.key, healthy: entry.state.isHealthy)
        switch transition {
        case .becameUnhealthy:
            logger.warning(
                "backend target unhealthy: out of rotation",
                metadata: ["api": "\(result.key.api)", "target": "\(result.key.target)", "check.detail": "\(result.detail)"])
        case .becameHealthy:
            logger.notice("backend target healthy again", metadata: ["api": "\(result.key.api)", "target": "\(result.key.target)"])
        case .none:
            break
        }
    }

    /// Puts a check's verdict on the serving table's route for its API, if the target is still there.
    private func apply(_ key: Key, healthy: Bool) {
        guard let route = holder.table.routes[key.api],
            let index = route.balancer.targets.firstIndex(where: { $0.target.id == key.target })
        else { return }
        route.balancer.setHealthy(index, healthy)
    }

    /// One check of one target.
    private func probe(_ probe: Probe) async -> Result {
        let client = AdminHTTPClient(timeout: probe.timeout, maxResponseBytes: 64 * 1024, tls: tls)
        do {
            let response = try await client.request(.GET, probe.url, headers: ["User-Agent": "gateway-engine-health-check"])
            let code = Int(response.status.code)
            return (probe.key, probe.expected.matches(code), "status \(code)")
        } catch {
            return (probe.key, false, "\(error)")
        }
    }
}

import CoreMetrics
import GatewayCore
import Logging
import ServiceLifecycle

/// Owns the balancer's control-plane state and turns it into routing tables.
///
/// It combines the cluster view (nodes, operator weights and drains, the runtime policy), the active
/// health of each node, passive ejections and slow-start ramps into a ``RoutingPlan``; when the plan
/// changes it builds a new frozen ``RoutingTable`` and swaps it in whole. As a service it follows passive
/// ejections as they happen and ticks (ending ejections and ramps, refreshing gauges).
actor BalancerController: Service {
    struct Configuration: Sendable {
        /// The balancer's own region; empty turns locality off.
        var region = ""
        /// The policy when no operator switched it at runtime.
        var policy: PolicyKind = .weighted
        /// ``ConsistentHashPolicy``'s load bound.
        var hashBalanceFactor = ConsistentHashPolicy.defaultBalanceFactor
        var locality = true
        var overprovisioningFactor = 1.4
        /// Panic when fewer than this fraction of eligible nodes are usable.
        var panicThreshold = 0.5
        var slowStartWindow: Duration = .seconds(30)
        var slowStartMinimumFactor = 0.1
        var ewma = PeakEWMA.Configuration()
        var healthChecks = true
        var rise = 2
        var fall = 2
        var tick: Duration = .milliseconds(100)
    }

    private let configuration: Configuration
    nonisolated let tables: RoutingTableBox
    nonisolated let passive: PassiveHealth
    private let metrics: BalancerMetrics
    private let logger: Logger
    private let now: @Sendable () -> Instant
    private let seed: UInt64?

    private var view = ClusterView()
    private var hasView = false
    private var health: [String: ActiveHealthCheck] = [:]
    private var probeLatency: [String: Duration] = [:]
    private var loads: [String: NodeLoad] = [:]
    private var slowStarts: [String: SlowStart] = [:]
    private var usableBefore: Set<String> = []
    private var plan = RoutingPlan.empty
    private var generation = 0
    private var ticks = 0

    /// - Parameters:
    ///   - now: the clock (injected for tests).
    ///   - seed: fixes the routing tables' random choices (tests); nil for system-seeded.
    init(
        configuration: Configuration, tables: RoutingTableBox, passive: PassiveHealth, metrics: BalancerMetrics,
        logger: Logger, now: @escaping @Sendable () -> Instant = { .now }, seed: UInt64? = nil
    ) {
        self.configuration = configuration
        self.tables = tables
        self.passive = passive
        self.metrics = metrics
        self.logger = logger
        self.now = now
        self.seed = seed
    }

    nonisolated func run() async throws {
        let tick = configuration.tick
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await ejection in self.passive.ejections.cancelOnGracefulShutdown() {
                    await self.ejected(ejection)
                }
            }
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await self.tick()
                try? await Task.sleep(for: tick)
            }
            group.cancelAll()
        }
    }

    // MARK: Inputs

    /// A new cluster view from the registry.
    func apply(_ newView: ClusterView) {
        let first = !hasView
        let added = Set(newView.nodes.keys).subtracting(view.nodes.keys)
        let removed = Set(view.nodes.keys).subtracting(newView.nodes.keys)
        view = newView
        hasView = true
        for id in added.sorted() {
            health[id] = ActiveHealthCheck(rise: configuration.rise, fall: configuration.fall)
            if !first {
                logger.info("node joined", metadata: ["node": "\(id)", "node.address": "\(newView.nodes[id]!.address):\(newView.nodes[id]!.port)"])
            }
        }
        for id in removed.sorted() {
            health[id] = nil
            probeLatency[id] = nil
            loads[id] = nil
            slowStarts[id] = nil
            logger.info("node left", metadata: ["node": "\(id)"])
        }
        if !added.isEmpty || !removed.isEmpty { passive.setNodes(Set(view.nodes.keys)) }
        rebuild(initial: first)
    }

    /// Results of one round of active checks.
    func record(_ results: [ProbeResult]) {
        var changed = false
        for result in results {
            guard var check = health[result.node], let load = loads[result.node] else { continue }
            if let latency = result.latency {
                let previous = probeLatency[result.node]
                probeLatency[result.node] = previous.map { $0 * 0.7 + latency * 0.3 } ?? latency
            }
            switch check.record(passed: result.passed) {
            case .none:
                break
            case .becameHealthy:
                changed = true
                load.metrics.becameHealthy.increment()
                logger.info("node passes health checks again", metadata: ["node": "\(result.node)"])
            case .becameUnhealthy:
                changed = true
                load.metrics.becameUnhealthy.increment()
                logger.warning("node fails health checks", metadata: ["node": "\(result.node)", "health.detail": "\(result.detail)"])
            }
            health[result.node] = check
        }
        if changed { rebuild() }
    }

    private func ejected(_ ejection: PassiveHealth.Ejection) {
        loads[ejection.node]?.metrics.ejections.increment()
        let seconds = (ejection.until - now()).seconds
        logger.warning(
            "node ejected after consecutive failures",
            metadata: ["node": "\(ejection.node)", "ejection.seconds": "\(Int(seconds.rounded()))", "ejection.count": "\(ejection.ejections)"])
        rebuild()
    }

    /// Ends ejections and ramps that are over, refreshes gauges.
    func tick() {
        let returned = passive.expire(now: now())
        for id in returned { logger.info("node back from ejection", metadata: ["node": "\(id)"]) }
        rebuild()
        ticks += 1
        if ticks % 10 == 0 { refreshGauges() }
    }

    // MARK: Operator changes (applied at once; the registry confirms them from Redis)

    func knows(_ node: String) -> Bool { view.nodes[node] != nil }

    func setWeightOverride(_ weight: Int?, node: String) {
        view.weightOverrides[node] = weight
        rebuild()
    }

    func setDrained(_ drained: Bool, node: String) {
        if drained { view.drains.insert(node) } else { view.drains.remove(node) }
        rebuild()
    }

    func setPolicy(_ policy: PolicyKind) {
        view.policy = policy
        rebuild()
    }

    // MARK: Reading

    /// The policy in force and where it comes from (`runtime` when an operator switched it).
    var policy: (kind: PolicyKind, source: String) {
        view.policy.map { ($0, "runtime") } ?? (configuration.policy, "config")
    }

    /// The nodes active health checks should probe.
    func probeTargets() -> [UpstreamTarget] {
        view.nodes.values.map(\.target).sorted { $0.id < $1.id }
    }

    /// The current routing table's plan.
    var currentPlan: RoutingPlan { plan }

    func statuses() -> [NodeStatus] {
        statuses(at: now())
    }

    /// What `GET /nodes` shows.
    func report() -> NodesReport {
        let now = self.now()
        let policy = self.policy
        let nodes = statuses(at: now).map { status -> NodeReport in
            let load = loads[status.id]
            let ejectedFor = status.ejectedUntil.map { Int(($0 - now).milliseconds.rounded(.up)) }
            let check = health[status.id]
            return NodeReport(
                id: status.id, address: status.node.address, port: status.node.port, region: status.node.region,
                zone: status.node.zone, source: status.node.source.rawValue, drained: status.drained,
                eligible: status.isEligible, usable: status.isUsable,
                health: .init(
                    agentState: status.node.state.rawValue, agentHealth: status.node.health.rawValue,
                    agentReason: status.node.healthReason,
                    active: !configuration.healthChecks ? "off" : (check?.isHealthy ?? true) ? "healthy" : "unhealthy",
                    passive: status.ejectedUntil == nil ? "ok" : "ejected", ejectedForMilliseconds: ejectedFor),
                weight: .init(
                    configured: status.node.configuredWeight, advertised: status.node.advertisedWeight,
                    override: status.weightOverride, effective: status.effectiveWeight,
                    current: Double(status.effectiveWeight) * (status.slowStart?.factor(at: now) ?? 1)),
                ewmaMilliseconds: ((load?.latency(at: now) ?? 0) * 1e6).rounded() / 1e3,
                inFlight: load?.inFlight ?? 0, ejections: passive.totalEjections(status.id),
                probeMilliseconds: probeLatency[status.id].map { ($0.milliseconds * 1e3).rounded() / 1e3 },
                slowStart: status.slowStart != nil)
        }
        return NodesReport(
            region: configuration.region, policy: policy.kind.rawValue, policySource: policy.source, panic: plan.panic,
            generation: generation, usable: plan.usableCount, eligible: plan.eligibleCount,
            tiers: plan.tiers.map { .init(region: $0.region, share: $0.share, nodes: $0.members.map(\.target.id)) },
            nodes: nodes)
    }

    // MARK: Building tables

    private func statuses(at now: Instant) -> [NodeStatus] {
        view.nodes.values.sorted { $0.id < $1.id }.map { node in
            NodeStatus(
                node: node, weightOverride: view.weightOverrides[node.id], drained: view.drains.contains(node.id),
                activeHealthy: !configuration.healthChecks || (health[node.id]?.isHealthy ?? true),
                ejectedUntil: passive.ejectedUntil(node.id, now: now), slowStart: slowStarts[node.id])
        }
    }

    private func rebuild(initial: Bool = false) {
        let now = self.now()
        var statuses = self.statuses(at: now)
        let usable = Set(statuses.filter(\.isUsable).map(\.id))
        // A node that joins or recovers ramps up; not when nothing was usable before (there is no load to
        // shift, and a whole pool ramping together gets the same shares anyway).
        if !initial, !usableBefore.isEmpty, configuration.slowStartWindow > .zero {
            for id in usable.subtracting(usableBefore) {
                slowStarts[id] = SlowStart(start: now, window: configuration.slowStartWindow, minimumFactor: configuration.slowStartMinimumFactor)
            }
        }
        slowStarts = slowStarts.filter { usable.contains($0.key) && !$0.value.isOver(at: now) }
        usableBefore = usable
        for i in statuses.indices { statuses[i].slowStart = slowStarts[statuses[i].id] }

        let policy = self.policy.kind
        let locality =
            configuration.locality
            ? LocalityPlanner(localRegion: configuration.region, overprovisioningFactor: configuration.overprovisioningFactor) : nil
        let next = RoutingPlan.make(
            nodes: statuses, policy: policy, locality: locality, panicThreshold: configuration.panicThreshold,
            regionLatency: regionLatency(), hashBalanceFactor: configuration.hashBalanceFactor)
        guard next != plan || generation == 0 else { return }
        if next.panic != plan.panic {
            if next.panic {
                logger.warning(
                    "panic mode: too few usable nodes; routing across every eligible node",
                    metadata: ["nodes.usable": "\(next.usableCount)", "nodes.eligible": "\(next.eligibleCount)"])
            } else if generation > 0 {
                logger.info("panic mode over", metadata: ["nodes.usable": "\(next.usableCount)", "nodes.eligible": "\(next.eligibleCount)"])
            }
        }
        for status in statuses where loads[status.id] == nil {
            loads[status.id] = NodeLoad(id: status.id, ewma: configuration.ewma, now: now)
        }
        generation += 1
        plan = next
        let loads = self.loads
        let ewma = configuration.ewma
        tables.install(
            RoutingTable(
                plan: next, generation: generation, loads: { loads[$0] ?? NodeLoad(id: $0, ewma: ewma, now: now) },
                seed: seed.map { $0 &+ UInt64(generation) }))
        metrics.tableRebuilds.increment()
        metrics.panic.record(next.panic ? 1 : 0)
        metrics.usableNodes.record(next.usableCount)
        metrics.eligibleNodes.record(next.eligibleCount)
        for status in statuses {
            loads[status.id]?.metrics.effectiveWeight.record(status.effectiveWeight)
            loads[status.id]?.metrics.usable.record(status.isUsable ? 1 : 0)
        }
        logger.debug(
            "routing table installed",
            metadata: [
                "table.generation": "\(generation)", "policy": "\(policy.rawValue)", "nodes.usable": "\(next.usableCount)",
                "tiers":
                    "\(next.tiers.map { "\($0.region.isEmpty ? "*" : $0.region)=\(($0.share * 1000).rounded() / 1000)" }.joined(separator: ","))",
            ])
    }

    /// The mean smoothed probe latency of each region's nodes.
    private func regionLatency() -> [String: Duration] {
        var sums: [String: (Duration, Int)] = [:]
        for (id, latency) in probeLatency {
            guard let region = view.nodes[id]?.region else { continue }
            let (sum, count) = sums[region] ?? (.zero, 0)
            sums[region] = (sum + latency, count + 1)
        }
        return sums.mapValues { $0.0 / $0.1 }
    }

    private func refreshGauges() {
        let now = self.now()
        for load in loads.values {
            load.metrics.ewmaSeconds.record(load.latency(at: now))
            load.metrics.inFlight.record(load.inFlight)
        }
    }
}

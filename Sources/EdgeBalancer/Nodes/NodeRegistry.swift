import CoreMetrics
import GatewayCore
import Logging
import ServiceLifecycle

/// Keeps the balancer's ``ClusterView`` current: static nodes from configuration, plus the nodes agents
/// register in Redis with the operators' weight overrides, drains and runtime policy.
///
/// It rereads the whole registry when an event on the events channel announces a change, on every
/// (re)subscription (messages may have been missed while disconnected), and every `resyncInterval`
/// regardless, because pub/sub is lossy. When Redis cannot be read it keeps the last-known view. Ids in
/// the node index whose record expired are dropped from the view at once and removed from the index when
/// two reads in a row find them expired.
///
/// The events subscription itself (``RedisSubscriber``) runs as its own service; this one reads its
/// events.
actor NodeRegistry: Service {
    struct Configuration: Sendable {
        var resyncInterval: Duration = .seconds(1)
        /// Remove expired ids from the node index (the design makes readers do it).
        var pruneExpired = true
        /// Every node is reached over TLS (`upstream.tls`).
        var tls = false
    }

    private let staticNodes: [NodeDescriptor]
    private let store: ClusterStore?
    private let events: AsyncStream<RedisPubSubEvent>?
    private let configuration: Configuration
    private let metrics: BalancerMetrics
    private let logger: Logger
    private let deliver: @Sendable (ClusterView) async -> Void

    private var lastDelivered: ClusterView?
    private var reachable: Bool?
    private var expiredLastTime: Set<String> = []

    /// - Parameters:
    ///   - staticNodes: nodes from `nodes.static`.
    ///   - store: where to read the registry; nil for a static-only deployment.
    ///   - events: the events channel subscription, if any.
    ///   - deliver: receives every new view (never the same one twice in a row).
    init(
        staticNodes: [NodeDescriptor], store: ClusterStore?, events: AsyncStream<RedisPubSubEvent>?,
        configuration: Configuration = Configuration(), metrics: BalancerMetrics, logger: Logger,
        deliver: @escaping @Sendable (ClusterView) async -> Void
    ) {
        self.staticNodes = staticNodes
        self.store = store
        self.events = events
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.deliver = deliver
    }

    /// Whether the last read of Redis succeeded (nil before the first, or without Redis).
    var isReachable: Bool? { reachable }

    nonisolated func run() async throws {
        guard store != nil else {
            await publish(ClusterView(nodes: staticNodes))
            try? await gracefulShutdown()
            return
        }
        let (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let interval = configuration.resyncInterval
        let events = self.events
        let logger = self.logger
        await withDiscardingTaskGroup { group in
            group.addTask {
                guard let events else { return }
                for await event in events {
                    switch event {
                    case .subscribed:
                        signal.yield()
                    case .message(_, let payload):
                        switch ClusterEvent(json: payload) {
                        case .nodeUp, .nodeChanged, .nodeDown, .weightChanged, .drainChanged, .policyChanged:
                            signal.yield()
                        case .apisChanged, .keyRevoked:
                            break
                        case nil:
                            logger.debug("ignoring unreadable cluster event", metadata: ["event.payload": "\(payload.prefix(200))"])
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    signal.yield()
                    try? await Task.sleep(for: interval)
                }
            }
            for await _ in signals.cancelOnGracefulShutdown() {
                await self.resync()
            }
            group.cancelAll()
        }
    }

    /// Reads the registry once and delivers the result if it changed; on failure keeps the last view.
    func resync() async {
        guard let store else { return }
        let snapshot: ClusterStore.Snapshot
        do {
            snapshot = try await store.read()
        } catch {
            metrics.registrySyncFailures.increment()
            metrics.registryReachable.record(0)
            if reachable != false {
                logger.warning(
                    "cannot read the node registry; keeping the last-known nodes",
                    metadata: ["error": "\(error)", "nodes.known": "\(lastDelivered?.nodes.count ?? staticNodes.count)"])
            }
            reachable = false
            if lastDelivered == nil { await publish(ClusterView(nodes: staticNodes)) }
            return
        }
        metrics.registrySyncs.increment()
        metrics.registryReachable.record(1)
        if reachable == false { logger.info("node registry readable again") }
        reachable = true

        var view = ClusterView(nodes: staticNodes)
        for record in snapshot.records {
            view.nodes[record.id] = NodeDescriptor(record: record)
        }
        view.weightOverrides = snapshot.weightOverrides
        view.drains = snapshot.drains
        view.policy = snapshot.policy
        await publish(view)

        let expired = Set(snapshot.expired)
        let confirmed = expired.intersection(expiredLastTime)
        expiredLastTime = expired
        if configuration.pruneExpired, !confirmed.isEmpty {
            do {
                try await store.prune(confirmed.sorted())
                logger.info("pruned expired nodes from the index", metadata: ["nodes": "\(confirmed.sorted().joined(separator: ","))"])
            } catch {
                logger.debug("could not prune expired nodes", metadata: ["error": "\(error)"])
            }
        }
    }

    private func publish(_ view: ClusterView) async {
        var view = view
        if configuration.tls {
            for id in view.nodes.keys { view.nodes[id]?.tls = true }
        }
        guard view != lastDelivered else { return }
        lastDelivered = view
        await deliver(view)
    }
}

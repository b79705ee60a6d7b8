import CoreMetrics
import GatewayCore
import Logging
import NIOPosix
import ServiceLifecycle

/// The edge balancer's parts, wired together: discovery (Redis registry and static nodes), the controller
/// that builds routing tables, active health checks, the router the shared proxy front calls, the front
/// itself and the admin API.
///
/// ``services`` lists them in start order for one `ServiceGroup`: the admin listener first (it keeps
/// answering while the rest drain), the front last (it stops accepting first).
final class BalancerApp: Sendable {
    let settings: BalancerSettings
    let metrics: BalancerMetrics
    let tables: RoutingTableBox
    let passive: PassiveHealth
    let controller: BalancerController
    let router: BalancerRouter
    let redis: RedisClient?
    let store: ClusterStore?
    let subscriber: RedisSubscriber?
    let registry: NodeRegistry
    let healthChecker: ActiveHealthChecker
    let pools: UpstreamPools
    let front: HTTPFrontServer
    /// The TLS listener (ALPN h2 + http/1.1), when `tls.*` is configured.
    let tlsFront: HTTPFrontServer?
    /// Its certificate and key, reread on SIGHUP.
    let tlsContext: TLSContextBox?
    /// The client TLS to the nodes with `upstream.tls` (reread on SIGHUP).
    let upstreamTLS: ClientTLSContextBox?
    let admin: AdminHTTPServer
    private let gauges: FrontGauges
    private let upstreamGauges: UpstreamGauges

    /// - Parameters:
    ///   - now: the clock balancing decisions use.
    ///   - seed: fixes random choices (tests); nil seeds from the system.
    /// - Throws: when the TLS certificate or key cannot be loaded.
    /// - Parameter tlsContext: the TLS listener's context when the caller made it already (from
    ///   `settings.tls`); else it is made here.
    init(
        settings: BalancerSettings, tlsContext madeContext: TLSContextBox? = nil, logger: Logger,
        now: @escaping @Sendable () -> Instant = { .now }, seed: UInt64? = nil
    ) throws {
        self.settings = settings
        let metrics = BalancerMetrics()
        self.metrics = metrics
        tables = RoutingTableBox()
        passive = PassiveHealth(configuration: settings.outlier)
        controller = BalancerController(
            configuration: settings.controller, tables: tables, passive: passive, metrics: metrics,
            logger: logger, now: now, seed: seed)
        router = BalancerRouter(
            configuration: settings.router, tables: tables, passive: passive, metrics: metrics, logger: logger, now: now)

        if settings.useRedis {
            let redis = RedisClient(configuration: settings.common.redis, logger: logger)
            let keys = ClusterKeys(prefix: settings.common.keyPrefix)
            self.redis = redis
            store = ClusterStore(redis: redis, keys: keys)
            subscriber = RedisSubscriber(configuration: settings.common.redis, channels: [keys.events], client: redis, logger: logger)
        } else {
            redis = nil
            store = nil
            subscriber = nil
        }
        let controller = self.controller
        registry = NodeRegistry(
            staticNodes: settings.staticNodes, store: store, events: subscriber?.events,
            configuration: settings.registry, metrics: metrics, logger: logger
        ) { view in
            await controller.apply(view)
        }
        // With upstream.tls, requests and health checks reach the nodes over TLS with one client context.
        let upstreamTLS = settings.upstreamTLS ? try ClientTLSContextBox(files: settings.upstreamTLSFiles) : nil
        self.upstreamTLS = upstreamTLS
        healthChecker = ActiveHealthChecker(
            configuration: settings.health, controller: controller,
            client: AdminHTTPClient(timeout: settings.health.timeout, maxResponseBytes: 64 * 1024, tls: upstreamTLS), logger: logger)

        var upstream = UpstreamPools.Configuration()
        upstream.maxIdlePerTarget = settings.maxIdlePerNode
        upstream.maxConnectionsPerTarget = settings.maxConnectionsPerNode
        upstream.upstreamProtocol = settings.upstreamProtocol
        pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton, configuration: upstream, tls: upstreamTLS, logger: logger)
        var frontConfiguration = HTTPFrontServer.Configuration(host: settings.listenHost, port: settings.listenPort, limits: settings.limits)
        frontConfiguration.trustedProxies = settings.trustedProxies
        front = HTTPFrontServer(configuration: frontConfiguration, router: router, pools: pools, logger: logger)
        if let tls = settings.tls {
            let context = try madeContext ?? tls.makeContext()
            var configuration = HTTPFrontServer.Configuration(host: tls.host, port: tls.port, limits: settings.limits)
            configuration.tls = context
            configuration.tlsHandshakeFailures = Counter(label: "balancer_tls_handshake_failures_total")
            configuration.trustedProxies = settings.trustedProxies
            tlsContext = context
            tlsFront = HTTPFrontServer(configuration: configuration, router: router, pools: pools, logger: logger)
        } else {
            tlsContext = nil
            tlsFront = nil
        }

        var adminRouter = AdminRouter()
        let tables = self.tables
        StandardRoutes.add(
            to: &adminRouter, service: BalancerSettings.serviceName,
            health: {
                let plan = tables.table.plan
                return ["nodes_usable": "\(plan.usableCount)", "nodes_eligible": "\(plan.eligibleCount)", "panic": "\(plan.panic)"]
            },
            readiness: {
                tables.table.isEmpty ? "no usable node" : nil
            })
        BalancerAdminRoutes.add(to: &adminRouter, controller: controller, store: store, logger: logger)
        admin = AdminHTTPServer(settings: settings.common.admin, router: adminRouter, metricsPrefix: "balancer", logger: logger)
        gauges = FrontGauges(front: front, tlsFront: tlsFront, redis: redis, metrics: metrics)
        upstreamGauges = UpstreamGauges(pools: pools)
    }

    /// Every long-running part, in start order.
    var services: [any Service] {
        var services: [any Service] = [admin]
        if let subscriber { services.append(subscriber) }
        services += [controller, registry, healthChecker, gauges, upstreamGauges, front]
        if let tlsFront { services.append(tlsFront) }
        return services
    }

    /// Releases what outlives the services: Redis connections and idle upstream connections.
    func shutdown() async {
        passive.finish()
        pools.closeAll()
        await redis?.shutdown()
    }
}

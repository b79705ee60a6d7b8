import Foundation
import GatewayCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Yams

/// One gateway engine: the data listener, the admin listener, and the services that keep its API
/// definitions, keys and Redis state current.
///
/// Services start in dependency order (admin, events, definitions, Redis monitor, data listener) and stop
/// in reverse, so on SIGTERM the data listener drains first while the admin listener keeps answering.
public final class GatewayEngine: Sendable {
    public let configuration: EngineConfiguration
    public let front: HTTPFrontServer
    public let admin: AdminHTTPServer
    let redis: RedisClient
    let holder: RouteTableHolder
    let store: APIDefinitionStore
    let keyStore: APIKeyStore
    let cache: ResponseCache
    let metrics: EngineMetrics
    let state: EngineState
    let pools: UpstreamPools
    /// The TLS data listener and its certificate (reread on SIGHUP), when `tls.*` is configured.
    let tlsFront: HTTPFrontServer?
    let tlsContext: TLSContextBox?
    /// The client TLS of `https://` targets (reread on SIGHUP).
    let backendTLS: ClientTLSContextBox?
    private let events: EngineEvents
    private let watcher: RouteTableWatcher
    private let monitor: RedisMonitor
    private let healthChecker: TargetHealthChecker

    /// - Parameters:
    ///   - tlsContext: the certificate of the TLS data listener (`configuration.tls`; made by the
    ///     caller, which reports a bad file); without it there is no TLS listener.
    ///   - accessLogger: where the access log goes with `log.access` on (default: `gateway-engine.access`
    ///     through the logging system).
    public init(
        configuration: EngineConfiguration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        tlsContext: TLSContextBox? = nil, logger: Logger, accessLogger: Logger? = nil
    ) {
        self.configuration = configuration
        let keys = EngineKeys(prefix: configuration.common.keyPrefix)
        let redis = RedisClient(configuration: configuration.common.redis, logger: logger)
        let holder = RouteTableHolder()
        let store = APIDefinitionStore(redis: redis, keys: keys)
        let keyStore = APIKeyStore(redis: redis, keys: keys, logger: logger)
        let cache = ResponseCache(maxBytes: configuration.cacheMaxBytes, maxEntryBytes: configuration.cacheMaxEntryBytes)
        let metrics = EngineMetrics()
        let state = EngineState()
        // https:// targets: one client context, verifying against backends.caFile or the system's store
        // (the files were checked when the configuration was read), reread on SIGHUP.
        let backendTLS: ClientTLSContextBox?
        do {
            backendTLS = try ClientTLSContextBox(files: configuration.backendTLS)
        } catch {
            logger.error("no TLS for https backends: they will answer 502", metadata: ["error": "\(error)"])
            backendTLS = nil
        }
        let pools = UpstreamPools(group: eventLoopGroup, tls: backendTLS, logger: logger)
        self.backendTLS = backendTLS
        let liveNodes = configuration.liveNodesFallback
        let rateLimiter = RateLimiter(
            redis: redis, keys: keys, liveNodes: { liveNodes }, timeout: configuration.rateLimitTimeout, logger: logger)
        let events = EngineEvents(configuration: configuration.common.redis, keys: keys, client: redis, logger: logger)
        let watcher = RouteTableWatcher(
            store: store, holder: holder, checkInterval: configuration.versionCheckInterval, metrics: metrics,
            jwksClient: .http(tls: backendTLS, metrics: metrics, logger: logger), logger: logger)
        events.addHandler { event in watcher.handle(event) }
        events.addHandler { event in keyStore.handle(event) }
        let router = EngineRouter(
            holder: holder, keyStore: keyStore, rateLimiter: rateLimiter, cache: cache, pools: pools, metrics: metrics,
            accessLog: configuration.accessLog ? accessLogger ?? Logger(label: "gateway-engine.access") : nil,
            maxCachedResponseBytes: configuration.cacheMaxEntryBytes, healthPath: configuration.healthPath, state: state,
            logger: logger)
        var frontConfiguration = HTTPFrontServer.Configuration(
            host: configuration.listenHost, port: configuration.listenPort, limits: configuration.limits)
        frontConfiguration.scheme = "http"
        frontConfiguration.trustedProxies = configuration.trustedProxies
        self.front = HTTPFrontServer(configuration: frontConfiguration, router: router, pools: pools, group: eventLoopGroup, logger: logger)
        if let tls = configuration.tls, let tlsContext {
            var tlsConfiguration = HTTPFrontServer.Configuration(host: tls.host, port: tls.port, limits: configuration.limits)
            tlsConfiguration.tls = tlsContext
            tlsConfiguration.tlsHandshakeFailures = Counter(label: "gc_engine_tls_handshake_failures_total")
            tlsConfiguration.trustedProxies = configuration.trustedProxies
            self.tlsFront = HTTPFrontServer(configuration: tlsConfiguration, router: router, pools: pools, group: eventLoopGroup, logger: logger)
        } else {
            self.tlsFront = nil
        }
        self.tlsContext = tlsContext
        let adminAPI = EngineAdminAPI(
            store: store, holder: holder, keyStore: keyStore, cache: cache, metrics: metrics, state: state,
            logger: logger)
        self.admin = AdminHTTPServer(
            settings: configuration.common.admin, router: adminAPI.makeRouter(), metricsPrefix: "gc_engine", logger: logger)
        self.redis = redis
        self.holder = holder
        self.store = store
        self.keyStore = keyStore
        self.cache = cache
        self.metrics = metrics
        self.state = state
        self.pools = pools
        self.events = events
        self.watcher = watcher
        self.healthChecker = TargetHealthChecker(holder: holder, tls: backendTLS, logger: logger)
        self.monitor = RedisMonitor(
            redis: redis, state: state, metrics: metrics, holder: holder, store: store,
            seeder: Self.seeder(configuration, store: store, logger: logger),
            tunnels: { [front, tlsFront] in front.openTunnelCount + (tlsFront?.openTunnelCount ?? 0) }, logger: logger)
    }

    /// The services to run, in start order.
    public var services: [any Service] { [admin, events, watcher, monitor, healthChecker, front] + (tlsFront.map { [$0] } ?? []) }

    /// Reads the seed file now, so a bad file stops start-up with a clear message.
    public static func validateSeed(_ configuration: EngineConfiguration) throws -> Int {
        guard let path = configuration.seedFile else { return 0 }
        return try loadSeed(path).count
    }

    static func loadSeed(_ path: String) throws -> [APIDefinition] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigFileError(message: "apis.seedFile: cannot read \(path): \(error.localizedDescription)")
        }
        let tree: Any?
        do { tree = try Yams.load(yaml: text) } catch { throw ConfigFileError(message: "apis.seedFile: \(path) is not valid YAML: \(error)") }
        let list: [Any]
        if let top = tree as? [String: Any], let apis = top["apis"] as? [Any] {
            list = apis
        } else if let top = tree as? [Any] {
            list = top
        } else {
            throw ConfigFileError(message: "apis.seedFile: \(path) must hold a list of API definitions (or `apis:` with one)")
        }
        var definitions: [APIDefinition] = []
        var problems: [String] = []
        for (i, item) in list.enumerated() {
            do {
                let data = try JSONSerialization.data(withJSONObject: item)
                definitions.append(try APIDefinition.parse(json: data))
            } catch let error as APIDefinitionError {
                problems.append("apis[\(i)]: \(error.description)")
            } catch {
                problems.append("apis[\(i)]: not an object")
            }
        }
        if !problems.isEmpty { throw ConfigFileError(message: "apis.seedFile \(path):\n  " + problems.joined(separator: "\n  ")) }
        return definitions
    }

    /// Applies the seed file; returns how many definitions it holds.
    private static func seeder(_ configuration: EngineConfiguration, store: APIDefinitionStore, logger: Logger) -> (@Sendable () async throws -> Int)?
    {
        guard let path = configuration.seedFile else { return nil }
        let overwrite = configuration.seedMode == "overwrite"
        return {
            let definitions = try loadSeed(path)
            var written = 0
            for definition in definitions {
                if !overwrite, try await store.get(id: definition.id) != nil { continue }
                _ = try await store.put(definition)
                written += 1
            }
            logger.info(
                "API definitions seeded", metadata: ["seed.file": "\(path)", "seed.written": "\(written)", "seed.total": "\(definitions.count)"])
            return definitions.count
        }
    }
}

/// Pings Redis every second: readiness and the `gc_engine_redis_up` gauge follow it; the first time Redis
/// answers, the seed file (if any) is applied.
///
/// It is applied again when the definitions vanish from Redis: after a seed that wrote definitions, the
/// store's epoch (set by the first write and never removed by this software) is gone, which means Redis
/// came back without its data. An operator deleting every API keeps the epoch and is not undone.
final class RedisMonitor: Service, Sendable {
    let redis: RedisClient
    let state: EngineState
    let metrics: EngineMetrics
    let holder: RouteTableHolder
    let store: APIDefinitionStore
    let seeder: (@Sendable () async throws -> Int)?
    /// Open tunnels on the data listeners, sampled into `gc_engine_active_tunnels` on each pass.
    let tunnels: @Sendable () -> Int
    let logger: Logger

    init(
        redis: RedisClient, state: EngineState, metrics: EngineMetrics, holder: RouteTableHolder, store: APIDefinitionStore,
        seeder: (@Sendable () async throws -> Int)?, tunnels: @escaping @Sendable () -> Int = { 0 }, logger: Logger
    ) {
        self.tunnels = tunnels
        self.store = store
        self.redis = redis
        self.state = state
        self.metrics = metrics
        self.holder = holder
        self.seeder = seeder
        self.logger = logger
    }

    func run() async throws {
        var seeded = seeder == nil
        var wasUp = true
        // Whether the last seed held definitions: after it, a store without an epoch has lost its data.
        var seedHadDefinitions = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let up: Bool
            do {
                try await redis.send(RedisCommand("PING"), timeout: .seconds(1))
                up = true
            } catch {
                up = false
            }
            state.setRedisReachable(up)
            metrics.redisUp.record(up ? 1 : 0)
            metrics.redisPool.record(redis)
            metrics.activeTunnels.record(tunnels())
            if up != wasUp {
                if up { logger.notice("redis reachable again") } else { logger.warning("redis unreachable; serving with last-known definitions") }
                wasUp = up
            }
            if up, seeded, seedHadDefinitions, let version = try? await store.version(), version.epoch == nil {
                logger.warning(
                    "API definitions vanished from redis (restarted without its data?): applying the seed file again; API keys must be re-created")
                seeded = false
            }
            if up && !seeded, let seeder {
                do {
                    seedHadDefinitions = try await seeder() > 0
                    seeded = true
                } catch {
                    logger.error("seeding API definitions failed; will retry", metadata: ["error": "\(error)"])
                }
            }
            if let counter = holder.snapshot.storeVersion?.counter { metrics.definitionsVersion.record(counter) }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// The `gateway-engine` binary's work.
public enum GatewayEngineMain {
    public static func run(options: ServiceOptions) async throws {
        let launcher = ServiceLauncher(name: "gateway-engine", environmentPrefix: ["gc", "engine"], options: options)
        // The seed file and the TLS files are read before `--check-config` says the configuration is valid.
        let (configuration, tlsContext) = try await launcher.loadConfiguration({ v in EngineConfiguration.read(&v) }) { configuration in
            _ = try GatewayEngine.validateSeed(configuration)
            return try configuration.tls.map { try $0.makeContext() }
        }
        Telemetry.bootstrap(service: "gateway-engine", level: configuration.common.logLevel, format: configuration.common.logFormat)
        let logger = Logger(label: "gateway-engine")
        let group: any EventLoopGroup =
            configuration.eventLoopThreads > 0
            ? MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads) : MultiThreadedEventLoopGroup.singleton
        let engine = GatewayEngine(configuration: configuration, eventLoopGroup: group, tlsContext: tlsContext, logger: logger)
        try await launcher.run(
            services: engine.services, shutdownDeadline: configuration.common.shutdownDeadline, logger: logger,
            ready: {
                _ = try await engine.admin.listeningAddress
                _ = try await engine.front.listeningAddress
                if let tls = engine.tlsFront { _ = try await tls.listeningAddress }
            }
        ) {
            switch await launcher.validate({ v in EngineConfiguration.read(&v) }) {
            case .success(let new):
                Telemetry.logLevel.level = new.common.logLevel
                logger.info("configuration reloaded", metadata: ["log.level": "\(new.common.logLevel)"])
                TLSContextBox.reloadLogging(engine.tlsContext, running: configuration.tls, settings: new.tls, logger: logger)
                engine.backendTLS?.reloadLogging(to: logger, name: "backends", files: new.backendTLS)
                engine.admin.reloadTokens(from: new.common.admin)
            case .failure(let error):
                logger.error("configuration reload rejected; keeping the running configuration", metadata: ["error": "\(error)"])
            }
        }
    }
}

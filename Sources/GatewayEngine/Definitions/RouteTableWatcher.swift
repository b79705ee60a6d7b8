import GatewayCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Keeps the engine's route table in step with the definitions in Redis.
///
/// It loads every definition, builds a new ``RouteTable`` and swaps it into the ``RouteTableHolder``.
/// It reloads when an `apis_changed` event says the version moved, when the subscription is
/// re-established, when a periodic check of the version (every 500 ms by default) finds a change, so a
/// lost pub/sub message only delays a reload, and after every outage. When Redis cannot be reached the
/// last-known table stays in use.
///
/// Wire it to the events with `events.addHandler(watcher.handle)`.
final class RouteTableWatcher: Service, Sendable {
    let holder: RouteTableHolder
    private let store: APIDefinitionStore
    private let metrics: EngineMetrics?
    private let jwksClient: JWKSClient?
    private let checkInterval: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let state = NIOLockedValueBox(State())

    private struct State {
        /// A forced reload is owed (after a resync).
        var reloadOwed = true
        /// Reload if the loaded version is below this (from an event).
        var announcedVersion: Int64 = 0
        var failing = false
        var stats = Stats()
    }

    /// Counters for metrics and tests.
    struct Stats: Sendable, Hashable {
        var reloads = 0
        var failures = 0
    }

    var stats: Stats { state.withLockedValue { $0.stats } }

    /// - Parameters:
    ///   - store: where the definitions are.
    ///   - holder: the holder the data plane reads.
    ///   - checkInterval: how often the version counter is compared when no event arrives.
    ///   - now: the monotonic clock the tables' balancers use.
    ///   - metrics: the engine's metrics, which each route of the tables carries for its API.
    ///   - jwksClient: how the tables' JWT APIs fetch their key sets (`jwks_url`).
    init(
        store: APIDefinitionStore, holder: RouteTableHolder, checkInterval: Duration = .milliseconds(500),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, metrics: EngineMetrics? = nil,
        jwksClient: JWKSClient? = nil, logger: Logger
    ) {
        self.metrics = metrics
        self.jwksClient = jwksClient
        self.store = store
        self.holder = holder
        self.checkInterval = checkInterval
        self.now = now
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Takes an event from ``EngineEvents``.
    func handle(_ event: EngineEvent) {
        switch event {
        case .apisChanged(let version):
            state.withLockedValue { $0.announcedVersion = max($0.announcedVersion, version) }
        case .resync:
            state.withLockedValue { $0.reloadOwed = true }
        case .keyRevoked, .keyCreated, .keyUpdated, .other:
            return
        }
        wake.yield()
    }

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { [wake, checkInterval] in
                while !Task.isCancelled {
                    try await Task.sleep(for: checkInterval)
                    wake.yield()
                }
            }
            await refresh()
            for await _ in wakeups.cancelOnGracefulShutdown() {
                await refresh()
            }
            group.cancelAll()
        }
    }

    /// Reloads if something says the definitions changed; otherwise compares the version counter.
    func refresh() async {
        let loaded = holder.snapshot.storeVersion
        let (owed, announced) = state.withLockedValue { s -> (Bool, Int64) in
            defer { s.reloadOwed = false }
            return (s.reloadOwed, s.announcedVersion)
        }
        do {
            if !owed, let loaded, announced <= loaded.counter {
                let version = try await store.version()
                if version == loaded {
                    recovered()
                    return
                }
            }
            try await reload()
            // Events seen before this reload began are served by it.
            state.withLockedValue { if $0.announcedVersion == announced { $0.announcedVersion = 0 } }
        } catch {
            // Reload in full once Redis answers again: it may have restarted with other data.
            state.withLockedValue { $0.reloadOwed = true }
            let first = state.withLockedValue { s -> Bool in
                s.stats.failures += 1
                defer { s.failing = true }
                return !s.failing
            }
            if first {
                logger.warning(
                    "cannot load API definitions; serving the last-known table",
                    metadata: ["error": "\(error)", "definitions.version": "\(holder.table.version)"])
            }
        }
    }

    /// Loads every definition and swaps in a new table.
    func reload() async throws(RedisError) {
        let listing = try await store.list()
        let previous = holder.table
        let table = RouteTable(definitions: listing.definitions, previous: previous, now: now, metrics: metrics, jwksClient: jwksClient)
        holder.swap(table, storeVersion: listing.version)
        state.withLockedValue { $0.stats.reloads += 1 }
        recovered()
        for (id, reason) in listing.unreadable.sorted(by: { $0.key < $1.key }) {
            logger.error("skipping unreadable API definition", metadata: ["api.id": "\(id)", "error": "\(reason)"])
        }
        for conflict in table.conflicts {
            logger.error("API route conflict", metadata: ["conflict": "\(conflict)"])
        }
        if table.version != previous.version {
            logger.info(
                "API definitions loaded",
                metadata: [
                    "definitions.version": "\(table.version)", "definitions.store_version": "\(listing.version)",
                    "definitions.count": "\(table.definitions.count)", "definitions.active": "\(table.routes.count)",
                ])
        }
    }

    private func recovered() {
        let wasFailing = state.withLockedValue { s -> Bool in
            defer { s.failing = false }
            return s.failing
        }
        if wasFailing { logger.info("API definitions reachable again") }
    }
}

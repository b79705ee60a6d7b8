import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The layout of a Redis Cluster as the client knows it: which node serves each hash slot, and a
/// connection pool per node.
///
/// The layout comes from `CLUSTER SLOTS`, asked of any node the client knows (the seeds first). It is
/// asked again every ``refreshInterval``, after a `MOVED` (which also moves that slot at once), and after
/// a node could not be reached (a failover promotes a replica somewhere else). Until the first answer,
/// commands go to the first seed, whose `MOVED` replies steer them.
///
/// A node that no layout names any more (its slots resharded away, or the node removed) and that is not a
/// seed has its pool closed ``retireGrace`` after the layout that left it out, so the commands already
/// sent there finish (or time out) first.
final class RedisClusterRouter: Sendable {
    private struct State {
        /// The pool serving each slot; nil until the layout is known.
        var slots: [RedisConnectionPool?] = Array(repeating: nil, count: RedisClusterSlot.count)
        var pools: [RedisNodeAddress: RedisConnectionPool] = [:]
        /// The nodes serving slots, in the order `CLUSTER SLOTS` named them.
        var masters: [RedisNodeAddress] = []
        /// Their replicas, as `CLUSTER SLOTS` named them.
        var replicas: [RedisNodeAddress] = []
        /// Pools of nodes the layout no longer names, until they are closed.
        var retiring: [ObjectIdentifier: RedisConnectionPool] = [:]
        var refreshing = false
        var lastRefresh: NIODeadline = .uptimeNanoseconds(0)
        /// Refreshes in a row that no node answered; the first is logged as a warning, the rest at debug.
        var failedRefreshes = 0
        var closed = false
    }

    static let refreshInterval: Duration = .seconds(15)
    /// Two refreshes asked for by redirections or failures are at least this far apart.
    static let minimumRefreshGap: TimeAmount = .milliseconds(200)
    /// Redirections and retries one command follows before its last error is the caller's.
    static let maxAttempts = 6

    let configuration: RedisConfiguration
    let seedPool: RedisConnectionPool
    private let state: Mutex<State>
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let periodic: Mutex<RepeatedTask?> = Mutex(nil)
    /// How long the pool of a node that left the layout stays open for the commands already sent there:
    /// the command timeout and a second.
    let retireGrace: TimeAmount
    /// Redirections followed and layouts read, since start (``statistics``).
    private let movedCount = Atomic<Int>(0)
    let askCount = Atomic<Int>(0)
    let retryCount = Atomic<Int>(0)
    private let refreshCount = Atomic<Int>(0)
    private let refreshFailureCount = Atomic<Int>(0)
    private let retiredCount = Atomic<Int>(0)

    init(configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.retireGrace = (configuration.commandTimeout + .seconds(1)).timeAmount
        var state = State()
        for url in configuration.seedURLs {
            state.pools[url.nodeAddress] = Self.makePool(configuration, url: url, group: eventLoopGroup, logger: logger)
        }
        self.seedPool = state.pools[configuration.url.nodeAddress]!
        self.state = Mutex(state)
        let every = TimeAmount.nanoseconds(Int64(Self.refreshInterval.nanoseconds))
        let task = eventLoopGroup.any().scheduleRepeatedTask(initialDelay: .zero, delay: every) { [weak self] task in
            guard let self else { return task.cancel() }
            Task { await self.refresh(force: true) }
        }
        periodic.withLock { $0 = task }
    }

    private static func makePool(
        _ configuration: RedisConfiguration, url: RedisURL, group: any EventLoopGroup, logger: Logger
    ) -> RedisConnectionPool {
        var node = configuration
        node.url = url
        node.cluster = false
        node.clusterSeeds = []
        return RedisConnectionPool(configuration: node, eventLoopGroup: group, logger: logger)
    }

    /// The pool of the node serving `slot` (the first seed's while the layout is unknown), or the first
    /// seed's for a command without a key.
    func pool(forSlot slot: Int?) -> RedisConnectionPool {
        guard let slot else { return seedPool }
        return state.withLock { $0.slots[slot] } ?? seedPool
    }

    /// The pool of the node at `address`, opened on first use. Once the client is shut down no pool is
    /// opened: the first seed's (shut down too) answers, with ``RedisError/shutdown``.
    func pool(at address: RedisNodeAddress) -> RedisConnectionPool {
        if let pool = state.withLock({ $0.pools[address] }) { return pool }
        let made = Self.makePool(configuration, url: configuration.url.at(address), group: eventLoopGroup, logger: logger)
        let (pool, extra) = state.withLock { state -> (RedisConnectionPool, RedisConnectionPool?) in
            if state.closed { return (seedPool, made) }
            if let existing = state.pools[address] { return (existing, made) }
            state.pools[address] = made
            return (made, nil)
        }
        if let extra { Task { await extra.shutdown() } }
        return pool
    }

    /// Where a command without a key may go, in order: the first seed, the masters last learned, the
    /// other seeds.
    var keylessCandidates: [RedisConnectionPool] {
        state.withLock { state in
            var pools = [seedPool]
            for address in state.masters + configuration.seedURLs.map(\.nodeAddress) {
                if let pool = state.pools[address], !pools.contains(where: { $0 === pool }) { pools.append(pool) }
            }
            return pools
        }
    }

    /// Every pool, for statistics and shutdown.
    var allPools: [RedisConnectionPool] {
        state.withLock { Array($0.pools.values) }
    }

    /// The nodes serving slots, as last learned.
    var masters: [RedisNodeAddress] {
        state.withLock { $0.masters }
    }

    /// Every node the client knows, each once: the seeds, then the masters and replicas last learned.
    var knownNodes: [RedisNodeAddress] {
        state.withLock { state in
            var nodes: [RedisNodeAddress] = []
            for address in configuration.seedURLs.map(\.nodeAddress) + state.masters + state.replicas where !nodes.contains(address) {
                nodes.append(address)
            }
            return nodes
        }
    }

    var statistics: RedisClusterStatistics {
        RedisClusterStatistics(
            masters: state.withLock { $0.masters.count },
            moved: movedCount.load(ordering: .relaxed), asked: askCount.load(ordering: .relaxed),
            retried: retryCount.load(ordering: .relaxed), layoutReads: refreshCount.load(ordering: .relaxed),
            layoutFailures: refreshFailureCount.load(ordering: .relaxed), pools: state.withLock { $0.pools.count },
            poolsClosed: retiredCount.load(ordering: .relaxed))
    }

    /// Notes a `MOVED`: `slot` is served by `address` from now on; the rest of the layout is asked again.
    func moved(slot: Int, to address: RedisNodeAddress) {
        movedCount.add(1, ordering: .relaxed)
        let pool = pool(at: address)
        state.withLock { $0.slots[slot] = pool }
        requestRefresh()
    }

    /// Asks for the layout again soon, unless that is already under way or happened just now (checked
    /// here too, so a burst of failures while a node is down starts no task per failure).
    func requestRefresh() {
        let due = state.withLock { !$0.closed && !$0.refreshing && NIODeadline.now() - $0.lastRefresh >= Self.minimumRefreshGap }
        if due { Task { await refresh(force: false) } }
    }

    /// Asks each known node in turn for `CLUSTER SLOTS` until one answers, and installs that layout.
    func refresh(force: Bool) async {
        let candidates: [RedisNodeAddress]? = state.withLock { state in
            guard !state.closed, !state.refreshing else { return nil }
            if !force && NIODeadline.now() - state.lastRefresh < Self.minimumRefreshGap { return nil }
            state.refreshing = true
            let seeds = configuration.seedURLs.map(\.nodeAddress)
            return state.masters + seeds.filter { !state.masters.contains($0) }
        }
        guard let candidates else { return }
        var learned: [RedisClusterSlotRange]?
        var lastError: RedisError?
        for address in candidates {
            do {
                let reply = try await pool(at: address).withConnection { connection throws(RedisError) in
                    try await connection.send(RedisCommand("CLUSTER", "SLOTS"))
                }
                learned = try Self.parseSlots(reply, askedOf: address)
                break
            } catch {
                lastError = error
            }
        }
        var pools: [RedisNodeAddress: RedisConnectionPool] = [:]
        if let learned {
            for range in learned where pools[range.master] == nil { pools[range.master] = pool(at: range.master) }
        }
        let seeds = configuration.seedURLs.map(\.nodeAddress)
        let (changed, failures, departed): (Bool, Int, [(RedisNodeAddress, RedisConnectionPool)]) = state.withLock { state in
            state.refreshing = false
            state.lastRefresh = .now()
            guard let learned else {
                state.failedRefreshes += 1
                return (false, state.failedRefreshes, [])
            }
            state.failedRefreshes = 0
            var slots = [RedisConnectionPool?](repeating: nil, count: RedisClusterSlot.count)
            var masters: [RedisNodeAddress] = []
            var replicas: [RedisNodeAddress] = []
            for range in learned {
                for slot in range.slots { slots[slot] = pools[range.master] }
                if !masters.contains(range.master) { masters.append(range.master) }
                for replica in range.replicas where !replicas.contains(replica) { replicas.append(replica) }
            }
            let changed = masters != state.masters
            state.slots = slots
            state.masters = masters
            state.replicas = replicas
            // The pool of a node this layout leaves out is closed after the grace. (One opened for a
            // MOVED that this layout, read before the move, does not know yet is too: the next MOVED
            // opens it again.)
            var departed: [(RedisNodeAddress, RedisConnectionPool)] = []
            guard !state.closed else { return (changed, 0, departed) }
            for (address, pool) in state.pools where !masters.contains(address) && !replicas.contains(address) && !seeds.contains(address) {
                departed.append((address, pool))
            }
            for (address, pool) in departed {
                state.pools[address] = nil
                state.retiring[ObjectIdentifier(pool)] = pool
            }
            return (changed, 0, departed)
        }
        for (address, pool) in departed { retire(pool, at: address) }
        if learned == nil {
            refreshFailureCount.add(1, ordering: .relaxed)
        } else {
            refreshCount.add(1, ordering: .relaxed)
        }
        if learned == nil, let lastError {
            let metadata: Logger.Metadata = ["error": "\(lastError)", "redis.failures": "\(failures)"]
            if failures == 1 {
                logger.warning("redis cluster layout unavailable", metadata: metadata)
            } else {
                logger.debug("redis cluster layout unavailable", metadata: metadata)
            }
        } else if changed {
            logger.info("redis cluster layout", metadata: ["redis.masters": "\(masters.map(\.description).joined(separator: ","))"])
        }
    }

    /// Closes the pool of a node the layout left out, after ``retireGrace``; logged once per node.
    private func retire(_ pool: RedisConnectionPool, at address: RedisNodeAddress) {
        logger.info(
            "redis cluster node left the layout; closing its connections",
            metadata: ["redis.node": "\(address)", "redis.grace_ms": "\(retireGrace.nanoseconds / 1_000_000)"])
        eventLoopGroup.any().scheduleTask(in: retireGrace) { [weak self] in
            let due = self?.state.withLock { $0.retiring.removeValue(forKey: ObjectIdentifier(pool)) != nil } ?? true
            guard due else { return }  // shut down with the client meanwhile
            self?.retiredCount.add(1, ordering: .relaxed)
            Task { await pool.shutdown() }
        }
    }

    /// Reads `CLUSTER SLOTS`: `[[start, end, [host, port, id...], replicas...], ...]`. A node's host may
    /// be empty or `?` (Redis does not know the name it is reached by): then it is the host asked.
    static func parseSlots(_ reply: RedisValue, askedOf asked: RedisNodeAddress) throws(RedisError) -> [RedisClusterSlotRange] {
        guard let ranges = reply.array else { throw .unexpectedReply(command: "CLUSTER SLOTS", reply: "\(reply)") }
        func node(_ value: RedisValue) -> RedisNodeAddress? {
            guard let parts = value.array, parts.count >= 2, let port = parts[1].int, (1...65_535).contains(port) else { return nil }
            var host = parts[0].string ?? ""
            if host.isEmpty || host == "?" { host = asked.host }
            return RedisNodeAddress(host: host, port: Int(port))
        }
        var result: [RedisClusterSlotRange] = []
        for range in ranges {
            guard let parts = range.array, parts.count >= 3,
                let start = parts[0].int, let end = parts[1].int, 0 <= start, start <= end, end < RedisClusterSlot.count,
                let master = node(parts[2])
            else { throw .unexpectedReply(command: "CLUSTER SLOTS", reply: "\(range)") }
            result.append(RedisClusterSlotRange(slots: Int(start)...Int(end), master: master, replicas: parts.dropFirst(3).compactMap(node)))
        }
        return result
    }

    func shutdown() async {
        periodic.withLock { $0?.cancel() }
        let pools = state.withLock { state -> [RedisConnectionPool] in
            state.closed = true
            defer { state.retiring = [:] }
            return Array(state.pools.values) + state.retiring.values
        }
        for pool in pools { await pool.shutdown() }
    }
}

/// One entry of `CLUSTER SLOTS`: a range of slots, the master serving it and its replicas.
struct RedisClusterSlotRange: Equatable {
    var slots: ClosedRange<Int>
    var master: RedisNodeAddress
    var replicas: [RedisNodeAddress]
}

/// What a cluster client has seen since it started: the masters it knows, and counts of the
/// redirections it followed and of the layouts it read (``RedisClient/clusterStatistics``).
public struct RedisClusterStatistics: Sendable, Hashable {
    /// Nodes serving slots in the last layout read (0 before the first).
    public var masters: Int
    /// `MOVED` replies followed.
    public var moved: Int
    /// `ASK` replies followed.
    public var asked: Int
    /// `TRYAGAIN` and `CLUSTERDOWN` replies waited out.
    public var retried: Int
    /// `CLUSTER SLOTS` answers read, and refreshes no node answered.
    public var layoutReads: Int
    public var layoutFailures: Int
    /// Node pools open now (seeds, masters, and nodes reached through a redirection), and pools closed
    /// because their node left the layout.
    public var pools: Int
    public var poolsClosed: Int
}

/// What a cluster node's error reply asks of the client.
enum RedisClusterRedirect: Equatable {
    /// `MOVED slot host:port`: the slot lives there now.
    case moved(slot: Int, address: RedisNodeAddress)
    /// `ASK slot host:port`: the slot is migrating; this one command goes there after `ASKING`.
    case ask(slot: Int, address: RedisNodeAddress)
    /// `TRYAGAIN` (a multi-key command during a migration) or `CLUSTERDOWN`: wait a little and retry.
    case retryLater

    /// Reads the redirect in `message`, an error reply's text; `from` is the node that sent it (a reply
    /// may leave the host out, as in `MOVED 3999 :6381`).
    init?(message: String, from: RedisNodeAddress) {
        let words = message.split(separator: " ", maxSplits: 3)
        guard let code = words.first else { return nil }
        switch code {
        case "MOVED", "ASK":
            guard words.count >= 3, let slot = Int(words[1]), (0..<RedisClusterSlot.count).contains(slot) else { return nil }
            var target = String(words[2])
            if target.hasPrefix(":") { target = (from.host.contains(":") ? "[\(from.host)]" : from.host) + target }
            guard let address = RedisNodeAddress(parsing: target) else { return nil }
            self = code == "MOVED" ? .moved(slot: slot, address: address) : .ask(slot: slot, address: address)
        case "TRYAGAIN", "CLUSTERDOWN":
            self = .retryLater
        default:
            return nil
        }
    }

    init?(_ error: RedisError, from: RedisNodeAddress) {
        guard case .server(_, let message) = error else { return nil }
        self.init(message: message, from: from)
    }
}

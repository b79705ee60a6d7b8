/// Passive health: ejects a node after consecutive failed exchanges, as Envoy's outlier detection does.
///
/// - A connect failure, a reset or timed-out exchange, or a 5xx response counts as a failure; any other
///   response resets the count. A client that went away says nothing about the node.
/// - After `consecutiveFailures` failures in a row the node is ejected for `baseEjection × n`, n being how
///   many times it was ejected recently (capped at `maxEjection`); n drops by one for every
///   `multiplierDecay` without an ejection.
/// - Never more than `maxEjectedFraction` of the nodes are ejected at once: past that, a failing node
///   stays in (active checks and panic mode are the next line of defence).
///
/// A plain value: events in, actions out; the caller keeps it behind a lock and runs the actions.
struct OutlierDetector: Sendable {
    struct Configuration: Sendable, Hashable {
        var enabled = true
        var consecutiveFailures = 5
        var baseEjection: Duration = .seconds(5)
        var maxEjection: Duration = .seconds(300)
        var maxEjectedFraction = 0.5
        var multiplierDecay: Duration = .seconds(30)
    }

    enum Outcome: Sendable, Equatable {
        case success
        case failure
    }

    enum Action: Sendable, Equatable {
        case none
        /// The node is out until `until`; `ejections` counts its ejections so far.
        case eject(node: String, until: Instant, ejections: Int)
    }

    private struct NodeState: Sendable {
        var consecutiveFailures = 0
        var ejectedUntil: Instant?
        /// Recent ejections, driving the ejection time.
        var multiplier = 0
        var lastEjection: Instant?
        /// Every ejection since the node was first seen (for the admin API).
        var totalEjections = 0
    }

    let configuration: Configuration
    private var nodes: [String: NodeState] = [:]
    /// How many nodes have failures a success would reset. While none has, a success changes nothing
    /// (``PassiveHealth`` then skips the lock).
    var nodesWithFailures: Int { nodes.values.count(where: { $0.consecutiveFailures != 0 }) }

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Sets which nodes exist; forgets the others.
    mutating func setNodes<S: Sequence>(_ ids: S) where S.Element == String {
        var next: [String: NodeState] = [:]
        for id in ids { next[id] = nodes[id] ?? NodeState() }
        nodes = next
    }

    /// Records how one exchange with `node` ended.
    mutating func record(_ outcome: Outcome, node: String, now: Instant) -> Action {
        guard configuration.enabled, var state = nodes[node] else { return .none }
        if let until = state.ejectedUntil, until > now { return .none }  // answers from before the ejection
        switch outcome {
        case .success:
            // The usual answer changes nothing: no write back.
            if state.consecutiveFailures != 0 { nodes[node]?.consecutiveFailures = 0 }
            return .none
        case .failure:
            defer { nodes[node] = state }
            state.consecutiveFailures += 1
            guard state.consecutiveFailures >= configuration.consecutiveFailures else { return .none }
            let ejected = nodes.lazy.filter { $0.key != node && ($0.value.ejectedUntil.map { $0 > now } ?? false) }.count
            guard Double(ejected + 1) <= configuration.maxEjectedFraction * Double(nodes.count) else {
                return .none
            }
            if let last = state.lastEjection, configuration.multiplierDecay > .zero {
                let decays = Int((now - last) / configuration.multiplierDecay)
                state.multiplier = max(0, state.multiplier - decays)
            }
            state.multiplier += 1
            state.totalEjections += 1
            state.consecutiveFailures = 0
            state.lastEjection = now
            let duration = min(configuration.baseEjection * state.multiplier, configuration.maxEjection)
            let until = now + duration
            state.ejectedUntil = until
            return .eject(node: node, until: until, ejections: state.totalEjections)
        }
    }

    /// Ends ejections whose time is up; returns the nodes that came back.
    mutating func expire(now: Instant) -> [String] {
        var returned: [String] = []
        for (id, state) in nodes {
            if let until = state.ejectedUntil, until <= now {
                nodes[id]?.ejectedUntil = nil
                nodes[id]?.consecutiveFailures = 0
                returned.append(id)
            }
        }
        return returned.sorted()
    }

    /// When the node's ejection ends, if it is ejected at `now`.
    func ejectedUntil(_ node: String, now: Instant) -> Instant? {
        guard let until = nodes[node]?.ejectedUntil, until > now else { return nil }
        return until
    }

    func totalEjections(_ node: String) -> Int {
        nodes[node]?.totalEjections ?? 0
    }
}

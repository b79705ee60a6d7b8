import GatewayCore

/// The node record the agent keeps in Redis and when to announce it, apart from any I/O.
///
/// The agent's single writer takes a ``snapshot(nowMilliseconds:)`` (the record plus a generation),
/// writes it, and reports back with ``written(existed:generation:)``, which says which event to publish:
/// `node_up` when the write (re)created the record, `node_changed` when something balancers act on
/// (state, health, weight, zone, region, labels, address) changed since the last announcement.
struct RegistrationStateMachine: Sendable {
    enum Phase: Sendable, Equatable {
        /// Serving: state follows the engine's health.
        case serving
        /// SIGTERM received: balancers must send nothing new.
        case draining
    }

    private(set) var identity: NodeIdentity
    private(set) var phase: Phase = .serving
    private(set) var probe: ProbeResult
    private(set) var lastInvalidation: RedisStreamID = .zero
    /// Bumped by every change worth announcing.
    private(set) var generation: UInt64 = 0
    /// The newest generation Redis has accepted.
    private(set) var writtenGeneration: UInt64?
    private var announcedGeneration: UInt64?

    init(identity: NodeIdentity) {
        self.identity = identity
        self.probe = ProbeResult(health: .down, reason: "not probed yet", load: .zero)
    }

    /// The state balancers read: `draining` once draining, else `down` when the engine is down, else `up`.
    var state: NodeState {
        switch phase {
        case .draining: return .draining
        case .serving: return probe.health == .down ? .down : .up
        }
    }

    /// Whether the newest write Redis accepted includes every change made so far.
    var isWrittenUpToDate: Bool { writtenGeneration.map { $0 >= generation } ?? false }

    mutating func probed(_ result: ProbeResult) {
        let before = (state, probe.health)
        probe = result
        if before != (state, probe.health) { generation += 1 }
    }

    /// A reloaded configuration; returns whether anything advertised changed. The node id cannot change
    /// without a restart and is kept.
    mutating func reconfigured(_ new: NodeIdentity) -> Bool {
        var new = new
        new.id = identity.id
        guard new != identity else { return false }
        identity = new
        generation += 1
        return true
    }

    /// Enters draining; returns the generation whose write tells balancers.
    mutating func beginDrain() -> UInt64 {
        if phase != .draining {
            phase = .draining
            generation += 1
        }
        return generation
    }

    /// The consumer applied everything up to `id` (normally forward; back to zero only when the stream
    /// was lost and recreated).
    mutating func invalidationApplied(_ id: RedisStreamID) {
        lastInvalidation = id
    }

    func snapshot(nowMilliseconds: Int64) -> (record: NodeRecord, generation: UInt64) {
        let load = probe.load
        let record = NodeRecord(
            id: identity.id, region: identity.region, zone: identity.zone, address: identity.address, port: identity.port,
            weight: identity.weight, state: state, health: probe.health, healthReason: probe.reason, inFlight: load.inFlight,
            requestsPerSecond: load.requestsPerSecond, p50Milliseconds: load.p50Milliseconds,
            p99Milliseconds: load.p99Milliseconds, errorRate: load.errorRate, cpuPercent: load.cpuPercent,
            memoryBytes: load.memoryBytes, version: probe.engineVersion ?? GatewayVersion.current,
            definitionsVersion: probe.definitionsVersion ?? "", lastInvalidation: lastInvalidation.description,
            labels: identity.labelsText, updatedAtMilliseconds: nowMilliseconds)
        return (record, generation)
    }

    /// Redis accepted the snapshot of `generation`; `existed` says whether the record was there before.
    /// Returns the event to publish, if any.
    mutating func written(existed: Bool, generation: UInt64) -> ClusterEvent? {
        writtenGeneration = max(writtenGeneration ?? 0, generation)
        if !existed || announcedGeneration == nil {
            announcedGeneration = generation
            return .nodeUp(node: identity.id)
        }
        if generation > announcedGeneration! {
            announcedGeneration = generation
            return .nodeChanged(node: identity.id)
        }
        return nil
    }
}

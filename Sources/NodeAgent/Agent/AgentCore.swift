import Foundation
import GatewayCore

/// The agent's mutable state, owned by one actor: the registration state machine, the engine settings
/// (reloadable), and the doorbell that wakes the record writer.
actor AgentCore {
    private var machine: RegistrationStateMachine
    private(set) var engine: EngineSettings
    private var doorbell: AsyncStream<Void>.Continuation?

    init(identity: NodeIdentity, engine: EngineSettings) {
        self.machine = RegistrationStateMachine(identity: identity)
        self.engine = engine
    }

    var identity: NodeIdentity { machine.identity }
    var state: NodeState { machine.state }
    var lastInvalidation: RedisStreamID { machine.lastInvalidation }

    /// Connects the writer's doorbell; every change rings it.
    func attach(_ doorbell: AsyncStream<Void>.Continuation) {
        self.doorbell = doorbell
    }

    func ring() {
        doorbell?.yield()
    }

    func snapshot() -> (record: NodeRecord, generation: UInt64) {
        machine.snapshot(nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
    }

    func written(existed: Bool, generation: UInt64) -> ClusterEvent? {
        machine.written(existed: existed, generation: generation)
    }

    func isWritten(generation: UInt64) -> Bool {
        (machine.writtenGeneration ?? 0) >= generation
    }

    /// Records a probe; returns the health before it.
    func probed(_ result: ProbeResult) -> (previous: NodeHealth, state: NodeState) {
        let previous = machine.probe.health
        machine.probed(result)
        ring()
        return (previous, machine.state)
    }

    /// Applies a reloaded configuration; returns whether the advertised record changed.
    func reconfigure(identity: NodeIdentity, engine: EngineSettings) -> Bool {
        self.engine = engine
        let changed = machine.reconfigured(identity)
        if changed { ring() }
        return changed
    }

    func beginDrain() -> UInt64 {
        let generation = machine.beginDrain()
        ring()
        return generation
    }

    /// Where invalidations resume (from the state file), before the first heartbeat.
    func resumeInvalidations(at id: RedisStreamID) {
        machine.invalidationApplied(id)
    }

    func invalidationApplied(_ id: RedisStreamID) {
        machine.invalidationApplied(id)
        ring()
    }
}

import GatewayCore
import Testing

@testable import NodeAgent

/// Which events the record writer publishes, without Redis.
@Suite struct RegistrationStateMachineTests {
    let identity = NodeIdentity(id: "n1", region: "eu", zone: "eu-1a", address: "10.0.0.1", port: 8080, weight: 50, labels: ["tier=gold"])
    let up = ProbeResult(health: .up, reason: "", load: EngineLoad(inFlight: 3))

    /// The first accepted write announces the node; later identical writes announce nothing.
    @Test func firstWriteAnnouncesNodeUp() {
        var machine = RegistrationStateMachine(identity: identity)
        machine.probed(up)
        let (record, generation) = machine.snapshot(nowMilliseconds: 1)
        #expect(record.state == .up && record.region == "eu" && record.zone == "eu-1a" && record.labels == "tier=gold")
        #expect(record.inFlight == 3)
        let first = machine.written(existed: false, generation: generation)
        let second = machine.written(existed: true, generation: generation)
        #expect(first == .nodeUp(node: "n1"))
        #expect(second == nil)
    }

    /// A record that vanished (Redis restarted) and is written again is announced as up again.
    @Test func recreatedRecordIsAnnouncedAgain() {
        var machine = RegistrationStateMachine(identity: identity)
        machine.probed(up)
        let first = machine.written(existed: false, generation: machine.generation)
        let again = machine.written(existed: false, generation: machine.generation)
        #expect(first == .nodeUp(node: "n1"))
        #expect(again == .nodeUp(node: "n1"))
    }

    /// A health change, a reload with a new weight, and draining are each announced once as changes.
    @Test func changesAreAnnouncedAsNodeChanged() {
        var machine = RegistrationStateMachine(identity: identity)
        machine.probed(up)
        _ = machine.written(existed: false, generation: machine.generation)

        machine.probed(ProbeResult(health: .down, reason: "engine not answering", load: .zero))
        #expect(machine.state == .down)
        let healthEvent = machine.written(existed: true, generation: machine.generation)
        #expect(healthEvent == .nodeChanged(node: "n1"))

        var heavier = identity
        heavier.weight = 80
        let changed = machine.reconfigured(heavier)
        let changedAgain = machine.reconfigured(heavier)
        #expect(changed && !changedAgain)
        let reloadEvent = machine.written(existed: true, generation: machine.generation)
        #expect(reloadEvent == .nodeChanged(node: "n1"))

        let drain = machine.beginDrain()
        #expect(machine.state == .draining)
        #expect(!machine.isWrittenUpToDate)
        let drainEvent = machine.written(existed: true, generation: drain)
        #expect(drainEvent == .nodeChanged(node: "n1"))
        #expect(machine.isWrittenUpToDate)
    }

    /// Load and invalidation progress change the record but are not announced.
    @Test func loadAndProgressAreNotAnnounced() {
        var machine = RegistrationStateMachine(identity: identity)
        machine.probed(up)
        _ = machine.written(existed: false, generation: machine.generation)
        machine.probed(ProbeResult(health: .up, reason: "", load: EngineLoad(inFlight: 9, requestsPerSecond: 120)))
        machine.invalidationApplied(RedisStreamID("7-1")!)
        let (record, generation) = machine.snapshot(nowMilliseconds: 2)
        #expect(record.inFlight == 9 && record.requestsPerSecond == 120 && record.lastInvalidation == "7-1")
        let event = machine.written(existed: true, generation: generation)
        #expect(event == nil)
    }

    /// A reload cannot change the node id: that takes a restart.
    @Test func reloadKeepsTheNodeId() {
        var machine = RegistrationStateMachine(identity: identity)
        var renamed = identity
        renamed.id = "n2"
        let changed = machine.reconfigured(renamed)
        #expect(!changed)
        #expect(machine.identity.id == "n1")
    }
}

import GatewayCore
import Testing

@testable import EdgeBalancer

@Suite struct RoutingPlanTests {
    func node(_ id: String, region: String = "eu", weight: Int = 100, state: NodeState = .up) -> NodeStatus {
        NodeStatus(node: NodeDescriptor(id: id, address: "127.0.0.1", port: 1000, region: region, advertisedWeight: weight, state: state))
    }

    /// Drained, draining, down and zero-weight nodes get no new requests.
    @Test func onlyEligibleUsableNodesAreRouted() {
        var drained = node("b")
        drained.drained = true
        var zero = node("e")
        zero.weightOverride = 0
        let plan = RoutingPlan.make(
            nodes: [node("a"), drained, node("c", state: .draining), node("d", state: .down), zero, node("f")],
            policy: .weighted, locality: nil, panicThreshold: 0.5)
        #expect(plan.tiers.count == 1)
        #expect(plan.tiers[0].members.map(\.target.id) == ["a", "f"])
        #expect(!plan.panic)
    }

    /// The operator's override wins over the advertised weight.
    @Test func overrideWinsOverAdvertisedWeight() {
        var a = node("a", weight: 100)
        a.weightOverride = 300
        let plan = RoutingPlan.make(nodes: [a, node("b")], policy: .weighted, locality: nil, panicThreshold: 0.5)
        #expect(plan.tiers[0].members.map(\.weight) == [300, 100])
    }

    /// With fewer than half usable, routing spreads over every eligible node.
    @Test func panicsWhenFewerThanHalfAreUsable() {
        var b = node("b")
        b.activeHealthy = false
        var c = node("c")
        c.ejectedUntil = .now + .seconds(5)
        var d = node("d")
        d.drained = true
        let plan = RoutingPlan.make(nodes: [node("a"), b, c, d], policy: .roundRobin, locality: nil, panicThreshold: 0.5)
        #expect(plan.panic)
        #expect(plan.tiers[0].members.map(\.target.id) == ["a", "b", "c"])
        let calm = RoutingPlan.make(nodes: [node("a"), node("x"), b, c], policy: .roundRobin, locality: nil, panicThreshold: 0.5)
        #expect(!calm.panic)
        #expect(calm.tiers[0].members.map(\.target.id) == ["a", "x"])
    }

    /// Tiers follow the locality planner: own region, then spill.
    @Test func buildsLocalityTiers() {
        var a2 = node("a2")
        a2.activeHealthy = false
        let plan = RoutingPlan.make(
            nodes: [node("a1"), a2, node("u1", region: "us")], policy: .weighted,
            locality: LocalityPlanner(localRegion: "eu"), panicThreshold: 0.3, regionLatency: ["us": .milliseconds(5)])
        #expect(plan.tiers.map(\.region) == ["eu", "us"])
        #expect(abs(plan.tiers[0].share - 0.7) < 1e-9)
        #expect(plan.tiers[0].members.map(\.target.id) == ["a1"])
    }

    /// Drained nodes are capacity the region lost: draining half of it spills 30% to the next region.
    @Test func drainedNodesCountAsLostRegionalCapacity() {
        var e3 = node("e3")
        e3.drained = true
        var e4 = node("e4")
        e4.drained = true
        let plan = RoutingPlan.make(
            nodes: [node("e1"), node("e2"), e3, e4, node("u1", region: "us")], policy: .weighted,
            locality: LocalityPlanner(localRegion: "eu"), panicThreshold: 0.5)
        #expect(plan.tiers.map(\.region) == ["eu", "us"])
        #expect(abs(plan.tiers[0].share - 0.7) < 1e-9)
    }

    /// A table picks by tier share and skips excluded nodes, falling back to other tiers.
    @Test func tablePicksByShareAndHonoursExclusions() {
        let clock = TestClock()
        var a2 = node("a2")
        a2.activeHealthy = false
        let plan = RoutingPlan.make(
            nodes: [node("a1"), a2, node("u1", region: "us")], policy: .roundRobin,
            locality: LocalityPlanner(localRegion: "eu"), panicThreshold: 0.3)
        let table = RoutingTable(plan: plan, generation: 1, loads: { NodeLoad(id: $0, ewma: .init(), now: clock.now) }, seed: 42)
        var counts: [String: Int] = [:]
        for _ in 0..<10_000 { counts[table.pick(now: clock.now)!.id, default: 0] += 1 }
        #expect(abs(Double(counts["a1"]!) / 10_000 - 0.7) < 0.02)
        #expect(table.pick(now: clock.now, excluding: ["a1"])?.id == "u1")
        #expect(table.pick(now: clock.now, excluding: ["a1", "u1"]) == nil)
    }
}

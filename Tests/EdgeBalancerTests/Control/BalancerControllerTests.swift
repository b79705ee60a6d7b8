import GatewayCore
import GatewayTesting
import Testing

@testable import EdgeBalancer

@Suite struct BalancerControllerTests {
    let clock = TestClock()

    func controller(slowStart: Duration = .seconds(10), consecutiveFailures: Int = 2) -> BalancerController {
        var configuration = BalancerController.Configuration()
        configuration.policy = .weighted
        configuration.slowStartWindow = slowStart
        configuration.rise = 1
        configuration.fall = 1
        var outlier = OutlierDetector.Configuration()
        outlier.consecutiveFailures = consecutiveFailures
        outlier.baseEjection = .seconds(5)
        return BalancerController(
            configuration: configuration, tables: RoutingTableBox(), passive: PassiveHealth(configuration: outlier),
            metrics: BalancerMetrics(), logger: .forTesting(), now: clock.source, seed: 1)
    }

    func view(_ ids: [String]) -> ClusterView {
        ClusterView(nodes: ids.map { NodeDescriptor(id: $0, address: "127.0.0.1", port: 1) })
    }

    func members(_ controller: BalancerController) async -> [String] {
        await controller.currentPlan.tiers.flatMap { $0.members.map(\.target.id) }
    }

    /// Nodes present at start take full weight; a node that joins later ramps up, then runs at full weight.
    @Test func joiningNodeRampsUpButInitialNodesDoNot() async {
        let controller = controller()
        await controller.apply(view(["a", "b"]))
        #expect(await controller.currentPlan.tiers[0].members.allSatisfy { $0.slowStart == nil })
        await controller.apply(view(["a", "b", "c"]))
        let c = await controller.currentPlan.tiers[0].members.first { $0.target.id == "c" }
        #expect(c?.slowStart != nil)
        clock.advance(by: .seconds(11))
        await controller.tick()
        #expect(await controller.currentPlan.tiers[0].members.allSatisfy { $0.slowStart == nil })
    }

    /// A node failing its checks leaves the table, and ramps up when it passes again.
    @Test func recoveringNodeLeavesAndReturnsWithSlowStart() async {
        let controller = controller()
        await controller.apply(view(["a", "b", "c"]))
        await controller.record([ProbeResult(node: "c", passed: false, latency: nil, detail: "refused")])
        #expect(await members(controller) == ["a", "b"])
        await controller.record([ProbeResult(node: "c", passed: true, latency: .milliseconds(1), detail: "ok")])
        #expect(await members(controller) == ["a", "b", "c"])
        #expect(await controller.currentPlan.tiers[0].members.last?.slowStart != nil)
    }

    /// Passive ejection takes a node out at once; it comes back when the ejection ends.
    @Test func ejectedNodeComesBackAfterItsEjection() async {
        let controller = controller(slowStart: .zero)
        await controller.apply(view(["a", "b"]))
        controller.passive.record(.failure, node: "b", now: clock.now)
        controller.passive.record(.failure, node: "b", now: clock.now)
        await controller.tick()
        #expect(await members(controller) == ["a"])
        let report = await controller.report()
        #expect(report.nodes.first { $0.id == "b" }?.health.passive == "ejected")
        #expect(report.nodes.first { $0.id == "b" }?.ejections == 1)
        clock.advance(by: .seconds(5))
        await controller.tick()
        #expect(await members(controller) == ["a", "b"])
    }

    /// Operator changes apply at once: weight override, drain, policy.
    @Test func operatorChangesApplyAtOnce() async {
        let controller = controller()
        await controller.apply(view(["a", "b"]))
        await controller.setWeightOverride(300, node: "a")
        #expect(await controller.currentPlan.tiers[0].members.first?.weight == 300)
        await controller.setDrained(true, node: "b")
        #expect(await members(controller) == ["a"])
        await controller.setPolicy(.peakEWMA)
        #expect(await controller.currentPlan.policy == .peakEWMA)
        #expect(await controller.policy.source == "runtime")
    }
}

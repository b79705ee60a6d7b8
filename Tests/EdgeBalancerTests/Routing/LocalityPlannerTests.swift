import Testing

@testable import EdgeBalancer

@Suite struct LocalityPlannerTests {
    let planner = LocalityPlanner(localRegion: "eu", overprovisioningFactor: 1.4)

    /// With enough usable capacity, all traffic stays in the own region.
    @Test func keepsTrafficInRegionWhileCapacitySuffices() {
        let shares = planner.shares([
            .init(name: "eu", totalWeight: 400, usableWeight: 300, latency: .milliseconds(1)),
            .init(name: "us", totalWeight: 200, usableWeight: 200, latency: .milliseconds(80)),
        ])
        #expect(shares == [.init(region: "eu", share: 1)])
    }

    /// When 1.4 × usable falls short of the total, the shortfall goes to the nearest region first.
    @Test func spillsTheShortfallToTheNearestRegion() {
        let shares = planner.shares([
            .init(name: "ap", totalWeight: 200, usableWeight: 200, latency: .milliseconds(150)),
            .init(name: "eu", totalWeight: 400, usableWeight: 200, latency: .milliseconds(1)),
            .init(name: "us", totalWeight: 200, usableWeight: 200, latency: .milliseconds(80)),
        ])
        #expect(shares.map(\.region) == ["eu", "us"])
        #expect(abs(shares[0].share - 0.7) < 1e-9)
        #expect(abs(shares[1].share - 0.3) < 1e-9)
    }

    /// A near region that is itself short passes the rest on to the next one.
    @Test func cascadesThroughRegionsByLatency() {
        let shares = planner.shares([
            .init(name: "eu", totalWeight: 100, usableWeight: 0, latency: nil),
            .init(name: "us", totalWeight: 100, usableWeight: 50, latency: .milliseconds(80)),
            .init(name: "ap", totalWeight: 100, usableWeight: 100, latency: .milliseconds(150)),
        ])
        #expect(shares.map(\.region) == ["us", "ap"])
        #expect(abs(shares[0].share - 0.7) < 1e-9)
        #expect(abs(shares[1].share - 0.3) < 1e-9)
    }

    /// When every region is short, shares are scaled to sum to one.
    @Test func normalizesWhenAllRegionsFallShort() {
        let shares = planner.shares([
            .init(name: "eu", totalWeight: 100, usableWeight: 25, latency: nil),
            .init(name: "us", totalWeight: 100, usableWeight: 25, latency: .milliseconds(50)),
        ])
        #expect(shares.map(\.region) == ["eu", "us"])
        #expect(abs(shares[0].share - 0.5) < 1e-9)
        #expect(abs(shares.reduce(0) { $0 + $1.share } - 1) < 1e-9)
    }
}

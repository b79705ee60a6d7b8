/// Splits traffic between regions: the balancer's own region first, the shortfall to the others, nearest
/// first (Envoy's priority-level load with an overprovisioning factor).
///
/// A region's health is `min(1, factor × usable weight / total weight)`. The own region takes its health
/// as its share of traffic; what is left goes to the next region up to that region's health, and so on
/// in order of measured latency. With the default factor of 1.4, a region keeps all its traffic while at
/// least 1/1.4 ≈ 71% of its weight is usable. When all regions together fall short, the shares are scaled
/// up to sum to one.
struct LocalityPlanner: Sendable, Hashable {
    struct Region: Sendable, Hashable {
        var name: String
        /// Effective weight of every registered node, usable or not (drained and failing nodes are lost
        /// capacity).
        var totalWeight: Double
        /// Effective weight of the usable nodes.
        var usableWeight: Double
        /// Measured latency to the region (its nodes' health-check round trips), if known.
        var latency: Duration?
    }

    struct Share: Sendable, Hashable {
        var region: String
        var share: Double
    }

    /// The balancer's region; empty turns locality off (one pool of all usable nodes).
    var localRegion: String
    var overprovisioningFactor: Double = 1.4

    /// The regions in routing order: own region first, then by latency (unknown last), then by name.
    func order(_ regions: [Region]) -> [Region] {
        regions.sorted { a, b in
            if (a.name == localRegion) != (b.name == localRegion) { return a.name == localRegion }
            switch (a.latency, b.latency) {
            case (let x?, let y?) where x != y: return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.name < b.name
            }
        }
    }

    /// Each region's share of new requests, in routing order, omitting regions with no share.
    func shares(_ regions: [Region]) -> [Share] {
        var result: [Share] = []
        var remaining = 1.0
        var assigned = 0.0
        for region in order(regions) {
            guard region.totalWeight > 0, region.usableWeight > 0, remaining > 1e-12 else { continue }
            let health = min(1, overprovisioningFactor * region.usableWeight / region.totalWeight)
            let share = min(remaining, health)
            result.append(Share(region: region.name, share: share))
            remaining -= share
            assigned += share
        }
        guard assigned > 0 else { return [] }
        if remaining > 1e-12 {
            for i in result.indices { result[i].share /= assigned }
        }
        return result
    }
}

/// Ramps a node's share up after it joins or recovers, so a cold node is not handed a full share at once.
///
/// The factor grows linearly from `minimumFactor` at `start` to 1 at `start + window`.
struct SlowStart: Sendable, Hashable {
    let start: Instant
    let window: Duration
    /// The share a node gets right away (HAProxy and Envoy both start above zero so the node is probed).
    let minimumFactor: Double

    init(start: Instant, window: Duration, minimumFactor: Double = 0.1) {
        self.start = start
        self.window = window
        self.minimumFactor = min(max(minimumFactor, 0.01), 1)
    }

    /// The fraction of its weight the node gets at `now`, in `minimumFactor...1`.
    func factor(at now: Instant) -> Double {
        guard window > .zero else { return 1 }
        let elapsed = (now - start).seconds
        let fraction = elapsed / window.seconds
        return min(1, max(minimumFactor, fraction))
    }

    func isOver(at now: Instant) -> Bool {
        now >= start + window
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// The duration in milliseconds, as a `Double`.
    var milliseconds: Double { seconds * 1000 }
}

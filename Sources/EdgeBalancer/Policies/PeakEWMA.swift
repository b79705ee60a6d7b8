import Foundation

/// A peak-sensitive, time-decayed moving average of response time (Finagle's and Linkerd's "peak EWMA").
///
/// - A sample above the estimate replaces it at once: a node that turns slow loses share immediately.
/// - A sample below is blended in with weight `1 − e^(−Δt/τ)`, Δt being the time since the previous sample:
///   the estimate is an average over roughly the last τ (the decay, about 10 s).
/// - Read between samples, the estimate decays toward zero with the same τ, so a node that gets no traffic
///   (because it was slow once) comes back into contention and is measured again.
/// - A new node starts from an optimistic default, so it is tried soon.
struct PeakEWMA: Sendable {
    struct Configuration: Sendable, Hashable {
        /// τ: how fast old samples stop mattering and idle estimates decay.
        var decay: Duration = .seconds(10)
        /// Where a new node's estimate starts.
        var initialLatency: Duration = .milliseconds(1)

        init(decay: Duration = .seconds(10), initialLatency: Duration = .milliseconds(1)) {
            self.decay = decay
            self.initialLatency = initialLatency
        }
    }

    /// The estimate at ``stamp``, in seconds.
    private(set) var estimate: Double
    /// When the last sample arrived (or the node was added).
    private(set) var stamp: Instant
    private let tau: Double

    init(configuration: Configuration, now: Instant) {
        self.estimate = configuration.initialLatency.seconds
        self.stamp = now
        self.tau = max(configuration.decay.seconds, 1e-3)
    }

    /// The estimate at `now`, in seconds: decayed toward zero for the time since the last sample.
    func value(at now: Instant) -> Double {
        let idle = (now - stamp).seconds
        guard idle > 0 else { return estimate }
        return estimate * exp(-idle / tau)
    }

    /// Records a response time, in seconds.
    mutating func observe(_ rtt: Double, at now: Instant) {
        let rtt = max(rtt, 0)
        let elapsed = max((now - stamp).seconds, 0)
        if rtt > estimate {
            estimate = rtt
        } else {
            let recency = 1 - exp(-elapsed / tau)
            estimate += (rtt - estimate) * recency
        }
        if now > stamp { stamp = now }
    }
}

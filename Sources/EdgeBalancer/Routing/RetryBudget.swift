/// Caps retries at a fraction of recent requests, so retries never amplify an outage (Finagle's retry
/// budget): over a sliding window (10 s), retries may reach `ratio × requests`, plus
/// `minimumPerSecond × window` so that a quiet balancer can still retry at all.
///
/// Counts live in one-second buckets; a plain value, kept behind a lock by the router.
struct RetryBudget: Sendable {
    struct Configuration: Sendable, Hashable {
        var ratio = 0.2
        var minimumPerSecond = 10
        /// Whole seconds.
        var windowSeconds = 10
    }

    private struct Bucket: Sendable {
        var second: Int64 = .min
        var requests = 0
        var retries = 0
    }

    let configuration: Configuration
    private let origin: Instant
    private var buckets: [Bucket]

    init(configuration: Configuration, origin: Instant) {
        self.configuration = configuration
        self.origin = origin
        self.buckets = Array(repeating: Bucket(), count: max(1, configuration.windowSeconds))
    }

    /// Counts a request.
    mutating func recordRequest(now: Instant) {
        let index = bucket(for: now)
        buckets[index].requests += 1
    }

    /// Takes one retry from the budget if there is one left.
    mutating func tryRetry(now: Instant) -> Bool {
        let index = bucket(for: now)
        let (requests, retries) = totals(now: now)
        let allowance = configuration.ratio * Double(requests) + Double(configuration.minimumPerSecond * buckets.count)
        guard Double(retries + 1) <= allowance else { return false }
        buckets[index].retries += 1
        return true
    }

    /// Requests and retries in the window ending at `now`.
    func totals(now: Instant) -> (requests: Int, retries: Int) {
        let current = second(of: now)
        var requests = 0
        var retries = 0
        for bucket in buckets where bucket.second > current - Int64(buckets.count) && bucket.second <= current {
            requests += bucket.requests
            retries += bucket.retries
        }
        return (requests, retries)
    }

    private func second(of now: Instant) -> Int64 {
        (now - origin).components.seconds
    }

    private mutating func bucket(for now: Instant) -> Int {
        let s = second(of: now)
        let index = Int(((s % Int64(buckets.count)) + Int64(buckets.count)) % Int64(buckets.count))
        if buckets[index].second != s { buckets[index] = Bucket(second: s) }
        return index
    }
}

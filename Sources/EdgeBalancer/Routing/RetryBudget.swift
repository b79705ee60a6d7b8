import GatewayCore
import Synchronization

/// Caps retries at a fraction of recent requests, so retries never amplify an outage (Finagle's retry
/// budget): over a sliding window (10 s), retries may reach `ratio × requests`, plus
/// `minimumPerSecond × window` so that a quiet balancer can still retry at all.
///
/// Counts live in one-second buckets; a plain value, kept behind locks by ``ShardedRetryBudget``.
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
        let (requests, retries) = totals(now: now)
        guard allows(requests: requests, retries: retries) else { return false }
        countRetry(now: now)
        return true
    }

    /// Whether one more retry fits a window that saw `requests` and `retries`.
    func allows(requests: Int, retries: Int) -> Bool {
        let allowance = configuration.ratio * Double(requests) + Double(configuration.minimumPerSecond * buckets.count)
        return Double(retries + 1) <= allowance
    }

    /// Counts a retry.
    mutating func countRetry(now: Instant) {
        buckets[bucket(for: now)].retries += 1
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

/// The balancer's ``RetryBudget``, split by thread (``ThreadShard``): each request is counted in its
/// event loop's shard, so the loops do not share a lock per request. A retry, which is rare, sums every
/// shard's window and counts itself in its own. (Two loops retrying at the same instant may each see the
/// last retry the budget allows: the cap can be passed by one retry per loop, never more.)
final class ShardedRetryBudget: Sendable {
    private final class Shard: Sendable {
        let budget: Mutex<RetryBudget>

        init(_ budget: RetryBudget) { self.budget = Mutex(budget) }
    }

    private let shards: [Shard]

    init(configuration: RetryBudget.Configuration, origin: Instant) {
        shards = (0..<ThreadShard.count).map { _ in Shard(RetryBudget(configuration: configuration, origin: origin)) }
    }

    /// Counts a request.
    func recordRequest(now: Instant) {
        shards[ThreadShard.index()].budget.withLock { $0.recordRequest(now: now) }
    }

    /// Takes one retry from the budget if there is one left.
    func tryRetry(now: Instant) -> Bool {
        var requests = 0
        var retries = 0
        for shard in shards {
            let totals = shard.budget.withLock { $0.totals(now: now) }
            requests += totals.requests
            retries += totals.retries
        }
        return shards[ThreadShard.index()].budget.withLock { own in
            guard own.allows(requests: requests, retries: retries) else { return false }
            own.countRetry(now: now)
            return true
        }
    }
}

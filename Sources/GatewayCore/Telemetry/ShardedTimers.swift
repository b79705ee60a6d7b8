import CoreMetrics
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The timers (Prometheus histograms of durations) of a process, kept apart from swift-prometheus's
/// registry: every request records two or three of them from whichever event loop serves it, and
/// swift-prometheus's histogram takes one lock per histogram, shared by every thread, then walks every
/// bucket comparing 128-bit `Duration`s. Here a recording takes the lock of one of a few shards, chosen
/// by the recording thread (so two event loops seldom meet on one lock or cache line), and finds its one
/// bucket by comparing `Int64` nanoseconds; the buckets are summed only when `/metrics` is rendered.
public final class ShardedTimers: Sendable {
    private struct Key: Hashable {
        var name: String
        var labels: [String]
    }

    private let timers = Mutex<[Key: ShardedTimer]>([:])
    /// Upper bounds of the buckets, ascending, in nanoseconds (`+Inf` comes after them).
    let bounds: [Int64]

    public init(buckets: [Duration]) {
        bounds = buckets.map { Int64($0.components.seconds) * 1_000_000_000 + Int64($0.components.attoseconds / 1_000_000_000) }.sorted()
    }

    /// The timer named `name` with `labels`, made on first use (one object per name and labels, as
    /// swift-prometheus does).
    func timer(name: String, labels: [(String, String)]) -> ShardedTimer {
        let key = Key(name: name, labels: labels.flatMap { [$0.0, $0.1] })
        return timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = ShardedTimer(name: name, labels: labels, bounds: bounds)
            timers[key] = timer
            return timer
        }
    }

    func remove(_ timer: ShardedTimer) {
        timers.withLock { timers in
            if let key = timers.first(where: { $0.value === timer })?.key { timers[key] = nil }
        }
    }

    /// The timers in Prometheus text format: one `# TYPE` line per name, then each label set's
    /// cumulative buckets, `+Inf`, `_sum` (seconds) and `_count`.
    public func emit(into buffer: inout [UInt8]) {
        let all = timers.withLock { Array($0.values) }
        let byName = Dictionary(grouping: all, by: \.name)
        for name in byName.keys.sorted() {
            buffer.append(contentsOf: "# TYPE \(name) histogram\n".utf8)
            for timer in byName[name]!.sorted(by: { $0.renderedLabels < $1.renderedLabels }) {
                timer.emit(into: &buffer)
            }
        }
    }
}

/// One timer of ``ShardedTimers``.
final class ShardedTimer: TimerHandler, Sendable {
    let name: String
    /// `key="value",…` with values escaped as the text format wants.
    let renderedLabels: String
    private let bounds: [Int64]
    private let shards: [Shard]

    /// Counts of one shard: per bucket (not cumulative; the last is `+Inf`), and the sum in nanoseconds.
    final class Shard: Sendable {
        struct Counts {
            var buckets: [Int]
            var sum: Int64 = 0
        }

        let counts: Mutex<Counts>

        init(buckets: Int) {
            counts = Mutex(Counts(buckets: Array(repeating: 0, count: buckets)))
        }
    }

    init(name: String, labels: [(String, String)], bounds: [Int64]) {
        self.name = name
        renderedLabels = labels.map { "\($0.0)=\"\(Telemetry.escapedForQuotes($0.1, escapingCR: false))\"" }.joined(separator: ",")
        self.bounds = bounds
        shards = (0..<ThreadShard.count).map { _ in Shard(buckets: bounds.count + 1) }
    }

    func recordNanoseconds(_ duration: Int64) {
        var bucket = 0
        while bucket < bounds.count && duration > bounds[bucket] { bucket += 1 }
        shards[ThreadShard.index()].counts.withLock { counts in
            counts.buckets[bucket] += 1
            counts.sum &+= max(0, duration)
        }
    }

    func emit(into buffer: inout [UInt8]) {
        var buckets = Array(repeating: 0, count: bounds.count + 1)
        var sum: Int64 = 0
        for shard in shards {
            shard.counts.withLock { counts in
                for i in buckets.indices { buckets[i] += counts.buckets[i] }
                sum &+= counts.sum
            }
        }
        let prefix = renderedLabels.isEmpty ? "" : renderedLabels + ","
        var cumulative = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += buckets[i]
            buffer.append(contentsOf: "\(name)_bucket{\(prefix)le=\"\(Self.seconds(bound))\"} \(cumulative)\n".utf8)
        }
        cumulative += buckets[bounds.count]
        buffer.append(contentsOf: "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n".utf8)
        let labels = renderedLabels.isEmpty ? "" : "{\(renderedLabels)}"
        buffer.append(contentsOf: "\(name)_sum\(labels) \(Self.seconds(sum))\n".utf8)
        buffer.append(contentsOf: "\(name)_count\(labels) \(cumulative)\n".utf8)
    }

    static func seconds(_ nanoseconds: Int64) -> String {
        "\(Double(nanoseconds) / 1e9)"
    }
}

/// Which of a few shards the calling thread uses, for state that every request updates from whichever
/// event loop serves it (timers, the engine's latency window, the balancer's retry budget): two loops
/// seldom meet on one lock or cache line, and readers sum the shards.
public enum ThreadShard {
    /// Shards for such state: a few more than the event loops of a small host (``index()`` gives 0–7).
    public static let count = 8

    /// The calling thread's shard, below ``count``: the top three bits of a multiplicative hash of its
    /// pthread id (an address, so its low bits are all alike).
    @inline(__always)
    public static func index() -> Int {
        #if canImport(Glibc)
            let id = UInt64(pthread_self())
        #else
            let id = UInt64(UInt(bitPattern: pthread_self()))
        #endif
        return Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> 61)
    }
}

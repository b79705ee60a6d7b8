import Foundation
import GatewayCore
import Metrics
import Synchronization

/// What the agent knows about itself right now, for its `/health`, `/ready` and `/metrics`.
public struct AgentStatus: Sendable {
    public var node: String
    public var region: String
    public var zone: String
    /// The state the record advertises.
    public var state: NodeState = .down
    /// What the last probe of the engine found.
    public var engineHealth: NodeHealth = .down
    public var engineReason: String = "not probed yet"
    /// Whether the last Redis call of the heartbeat succeeded.
    public var redisReachable = false
    /// When Redis last accepted a heartbeat.
    public var lastHeartbeat: ContinuousClock.Instant?
    public var heartbeatError: String?
    /// The last invalidation applied to the engine (and recorded).
    public var lastInvalidation: RedisStreamID = .zero
    /// Entries read from the stream and not yet applied.
    public var pendingInvalidations = 0
    /// When the oldest pending entry was added (its id's milliseconds, wall clock).
    public var oldestPendingMilliseconds: UInt64?
    /// Why the invalidation consumer is stuck, when it is.
    public var invalidationError: String?
    public var invalidationsApplied = 0
    public var fullPurges = 0

    /// Time since Redis last accepted a heartbeat; nil before the first.
    public func heartbeatAge(now: ContinuousClock.Instant = .now) -> Duration? {
        lastHeartbeat.map { now - $0 }
    }

    /// How far behind the stream the engine's cache is: the age of the oldest entry not yet applied.
    public func invalidationLag(nowMilliseconds: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)) -> Duration {
        guard let oldest = oldestPendingMilliseconds, nowMilliseconds > oldest else { return .zero }
        return .milliseconds(Int64(nowMilliseconds - oldest))
    }
}

/// Holds the ``AgentStatus`` behind a lock (read by admin handlers, written by the agent's loops) and keeps
/// the agent's metrics in step with it.
final class AgentStatusStore: Sendable {
    private let status: Mutex<AgentStatus>
    private let metrics = AgentMetrics()

    init(identity: NodeIdentity) {
        status = Mutex(AgentStatus(node: identity.id, region: identity.region, zone: identity.zone))
    }

    var current: AgentStatus { status.withLock { $0 } }

    func update(_ body: (inout AgentStatus) -> Void) {
        let snapshot = status.withLock { status in
            body(&status)
            return status
        }
        metrics.record(snapshot)
    }

    /// Refreshes the gauges that move with time alone (heartbeat age, invalidation lag), and those of the
    /// Redis client's connections.
    func refreshGauges(redis: RedisClient) {
        metrics.record(current)
        metrics.redisPool.record(redis)
    }

    func heartbeatSucceeded(state: NodeState) {
        update {
            $0.redisReachable = true
            $0.lastHeartbeat = .now
            $0.heartbeatError = nil
            $0.state = state
        }
    }

    func heartbeatFailed(_ error: RedisError) {
        metrics.heartbeatFailures.increment()
        update {
            $0.redisReachable = false
            $0.heartbeatError = "\(error)"
        }
    }

    func probed(_ result: ProbeResult, state: NodeState) {
        metrics.probes(result.health).increment()
        update {
            $0.engineHealth = result.health
            $0.engineReason = result.reason
            $0.state = state
        }
    }

    func invalidationsPending(_ entries: [RedisStreamEntry]) {
        update {
            $0.pendingInvalidations = entries.count
            $0.oldestPendingMilliseconds = entries.first.flatMap { RedisStreamID($0.id) }?.milliseconds
        }
    }

    func invalidationApplied(_ id: RedisStreamID, next: RedisStreamEntry?, fullPurge: Bool) {
        metrics.invalidationsApplied.increment()
        if fullPurge { metrics.fullPurges.increment() }
        update {
            $0.lastInvalidation = id
            $0.pendingInvalidations = max($0.pendingInvalidations - 1, 0)
            $0.oldestPendingMilliseconds = next.flatMap { RedisStreamID($0.id) }?.milliseconds
            $0.invalidationError = nil
            $0.invalidationsApplied += 1
            if fullPurge { $0.fullPurges += 1 }
        }
    }

    func invalidationStuck(_ reason: String) {
        metrics.purgeFailures.increment()
        update { $0.invalidationError = reason }
    }
}

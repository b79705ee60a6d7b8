/// The active health state of one node or backend target: HAProxy's rise and fall thresholds. The
/// balancer keeps one per engine node, the engine one per API target with a `health_check`.
///
/// A healthy node turns unhealthy after `fall` failed checks in a row; an unhealthy one turns healthy
/// after `rise` passed checks in a row. A node starts healthy (optimistic: passive detection and retries
/// cover a node that joins dead until its checks catch up).
public struct ActiveHealthCheck: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case healthy(consecutiveFailures: Int)
        case unhealthy(consecutiveSuccesses: Int)
    }

    public enum Transition: Sendable, Equatable {
        case none
        case becameHealthy
        case becameUnhealthy
    }

    public let rise: Int
    public let fall: Int
    public private(set) var state: State

    public init(rise: Int, fall: Int, healthy: Bool = true) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        self.state = healthy ? .healthy(consecutiveFailures: 0) : .unhealthy(consecutiveSuccesses: 0)
    }

    public var isHealthy: Bool {
        if case .healthy = state { return true }
        return false
    }

    /// Records one check's result.
    public mutating func record(passed: Bool) -> Transition {
        switch (state, passed) {
        case (.healthy, true):
            state = .healthy(consecutiveFailures: 0)
            return .none
        case (.healthy(let failures), false):
            if failures + 1 >= fall {
                state = .unhealthy(consecutiveSuccesses: 0)
                return .becameUnhealthy
            }
            state = .healthy(consecutiveFailures: failures + 1)
            return .none
        case (.unhealthy(let successes), true):
            if successes + 1 >= rise {
                state = .healthy(consecutiveFailures: 0)
                return .becameHealthy
            }
            state = .unhealthy(consecutiveSuccesses: successes + 1)
            return .none
        case (.unhealthy, false):
            state = .unhealthy(consecutiveSuccesses: 0)
            return .none
        }
    }
}

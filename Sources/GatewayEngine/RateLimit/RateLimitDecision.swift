/// The answer to "may this client make this request now?", with what the HTTP layer needs for
/// `429`/`503` and the `X-RateLimit-*` headers.
struct RateLimitDecision: Sendable, Hashable {
    enum Outcome: Sendable, Hashable {
        case allowed
        /// Refused: `429` with `Retry-After`.
        case limited(Reason)
        /// Redis is unreachable and the API fails closed: `503`.
        case unavailable
    }

    enum Reason: String, Sendable, Hashable {
        case rate
        case quota
    }

    /// Who decided, for the metric that shows which mode is active.
    enum Source: String, Sendable, Hashable {
        /// The shared Lua script: exact across engines.
        case redis
        /// The in-process fallback while Redis is unreachable (fail-open).
        case local
        /// Nobody: Redis is unreachable and the API fails closed.
        case none
    }

    var outcome: Outcome
    var source: Source
    /// `X-RateLimit-Limit`: the burst (requests allowed at once).
    var limit: Int
    /// `X-RateLimit-Remaining`.
    var remaining: Int
    /// `Retry-After` when limited.
    var retryAfter: Duration
    /// `X-RateLimit-Reset`: until the full burst is available again.
    var reset: Duration
    /// Requests left in the quota window, when the API has a quota and Redis decided.
    var quotaRemaining: Int?

    var isAllowed: Bool { outcome == .allowed }

    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (seconds), and `Retry-After` when limited. Empty when
    /// nobody decided (fail-closed 503).
    var headers: [(name: String, value: String)] {
        guard source != .none else { return [] }
        var headers = [
            ("X-RateLimit-Limit", String(limit)), ("X-RateLimit-Remaining", String(max(0, remaining))),
            ("X-RateLimit-Reset", String(Self.headerSeconds(reset))),
        ]
        if case .limited = outcome { headers.append(("Retry-After", String(max(1, Self.headerSeconds(retryAfter))))) }
        return headers
    }

    /// Whole seconds, rounded up, as `Retry-After` and `X-RateLimit-Reset` carry them.
    static func headerSeconds(_ d: Duration) -> Int {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return Int((ms + 999) / 1000)
    }
}

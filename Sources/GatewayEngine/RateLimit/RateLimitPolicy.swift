/// How many requests a client may make: `rate` per `periodSeconds` on average, and up to `burst` at once.
///
/// GCRA spaces requests `periodSeconds / rate` apart (the emission interval) and tolerates `burst`
/// requests arriving together.
struct RateLimitPolicy: Sendable, Hashable, Codable {
    var rate: Int
    var periodSeconds: Int
    var burst: Int

    init(rate: Int, periodSeconds: Int, burst: Int) {
        self.rate = rate
        self.periodSeconds = periodSeconds
        self.burst = burst
    }

    /// Time between two requests at the steady rate, in microseconds (at least 1).
    var emissionIntervalMicroseconds: Int64 {
        max(1, Int64(periodSeconds) * 1_000_000 / Int64(max(rate, 1)))
    }

    enum CodingKeys: String, CodingKey {
        case rate
        case periodSeconds = "period_seconds"
        case burst
    }
}

/// A cap on requests per fixed window of `periodSeconds` (windows aligned to the Unix epoch).
struct QuotaPolicy: Sendable, Hashable, Codable {
    var limit: Int
    var periodSeconds: Int

    init(limit: Int, periodSeconds: Int) {
        self.limit = limit
        self.periodSeconds = periodSeconds
    }

    enum CodingKeys: String, CodingKey {
        case limit
        case periodSeconds = "period_seconds"
    }
}

/// What an API's rate limit does when Redis cannot be reached.
enum RateLimitFailMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Refuse the request (the HTTP layer answers 503).
    case closed
    /// Keep serving under a local limiter at rate ÷ live nodes.
    case open
}

import GatewayCore
import Logging
import NIOConcurrencyHelpers

/// Cluster-wide rate limits and quotas: one atomic Lua script per decision, keyed per (API, client).
///
/// The script reads the clock with Redis `TIME`, so every engine measures against the same clock, and
/// it checks and updates the GCRA state and the quota count in one step, so N engines together admit
/// exactly the configured rate, never N times it. A request refused by the rate does not use quota; a
/// request refused by the quota does not use rate.
///
/// When Redis cannot be reached (or the script fails), an API that fails open is served by
/// ``LocalRateLimiter`` at rate ÷ live nodes; one that fails closed gets
/// ``RateLimitDecision/Outcome/unavailable`` (503).
final class RateLimiter: Sendable {
    private let redis: RedisClient
    private let keys: EngineKeys
    private let local: LocalRateLimiter
    private let liveNodes: @Sendable () -> Int
    private let timeout: Duration
    private let logger: Logger
    private let counters = NIOLockedValueBox(Stats())

    /// Decisions by who made them, and Redis failures, for metrics.
    struct Stats: Sendable, Hashable {
        var redisDecisions = 0
        var localDecisions = 0
        var failedClosed = 0
        var redisErrors = 0
    }

    var stats: Stats { counters.withLockedValue { $0 } }

    /// - Parameters:
    ///   - redis: the shared Redis.
    ///   - keys: key names.
    ///   - local: the fallback limiter.
    ///   - liveNodes: how many engines share the rate while Redis is unreachable (from the node registry).
    ///   - timeout: how long a decision may wait for Redis before falling back.
    init(
        redis: RedisClient, keys: EngineKeys, local: LocalRateLimiter = LocalRateLimiter(),
        liveNodes: @escaping @Sendable () -> Int = { 1 }, timeout: Duration = .milliseconds(250), logger: Logger
    ) {
        self.redis = redis
        self.keys = keys
        self.local = local
        self.liveNodes = liveNodes
        self.timeout = timeout
        self.logger = logger
    }

    /// Decides whether `client` may make one request to `api` now.
    ///
    /// - Parameters:
    ///   - api: the API id.
    ///   - client: the client identity (API key id, JWT identity claim, or remote address for keyless APIs).
    ///   - policy: the rate limit (the key's own, or the API's).
    ///   - quota: the quota, if any.
    ///   - failMode: what to do when Redis is unreachable.
    ///   - nowMicroseconds: for tests only: replaces Redis `TIME`.
    func check(
        api: String, client: String, policy: RateLimitPolicy, quota: QuotaPolicy? = nil, failMode: RateLimitFailMode,
        nowMicroseconds: Int64? = nil
    ) async -> RateLimitDecision {
        let rateKey = keys.rateLimit(api: api, client: client)
        let arguments: [RedisArgument] = [
            .int(Int(policy.emissionIntervalMicroseconds)), .int(policy.burst), .int(1),
            .int(quota?.limit ?? 0), .int(quota?.periodSeconds ?? 1), .string(nowMicroseconds.map(String.init) ?? ""),
        ]
        do {
            let reply = try await evaluate(keys: [rateKey, keys.quota(api: api, client: client)], arguments: arguments)
            guard let parts = reply.array, parts.count == 7, let values = Optional(parts.compactMap(\.int)), values.count == 7
            else { throw RedisError.unexpectedReply(command: "EVALSHA", reply: "\(reply)") }
            counters.withLockedValue { $0.redisDecisions += 1 }
            let outcome: RateLimitDecision.Outcome =
                values[0] == 1 ? .allowed : (values[1] == 2 ? .limited(.quota) : .limited(.rate))
            return RateLimitDecision(
                outcome: outcome, source: .redis, limit: policy.burst, remaining: Int(values[2]),
                retryAfter: .microseconds(values[3]), reset: .microseconds(values[4]),
                quotaRemaining: quota == nil ? nil : Int(values[5]))
        } catch {
            let first = counters.withLockedValue { s -> Bool in
                s.redisErrors += 1
                if failMode == .open { s.localDecisions += 1 } else { s.failedClosed += 1 }
                return s.redisErrors == 1 || s.redisErrors % 1000 == 0
            }
            if first {
                logger.warning(
                    "rate limit decision without redis",
                    metadata: ["error": "\(error)", "ratelimit.fail_mode": "\(failMode.rawValue)", "ratelimit.redis_errors": "\(stats.redisErrors)"])
            }
            switch failMode {
            case .open:
                return local.decide(key: rateKey, policy: policy, liveNodes: liveNodes())
            case .closed:
                return RateLimitDecision(
                    outcome: .unavailable, source: .none, limit: policy.burst, remaining: 0, retryAfter: .seconds(1),
                    reset: .seconds(1), quotaRemaining: nil)
            }
        }
    }

    /// `EVALSHA` with a short timeout, loading the script on `NOSCRIPT`.
    private func evaluate(keys: [String], arguments: [RedisArgument]) async throws(RedisError) -> RedisValue {
        let timeout = self.timeout
        return try await redis.withSharedConnection(forKey: keys.first) { connection throws(RedisError) in
            try await Self.evaluate(on: connection, keys: keys, arguments: arguments, timeout: timeout)
        }
    }

    private static func evaluate(
        on connection: RedisConnection, keys: [String], arguments: [RedisArgument], timeout: Duration
    ) async throws(RedisError) -> RedisValue {
        let args: [RedisArgument] = [.string(script.sha1), .int(keys.count)] + keys.map { .string($0) } + arguments
        do {
            return try await connection.send(RedisCommand("EVALSHA", arguments: args), timeout: timeout)
        } catch let error where error.serverErrorCode == "NOSCRIPT" {
            try await connection.send(RedisCommand("SCRIPT", "LOAD", .string(script.source)), timeout: timeout)
            return try await connection.send(RedisCommand("EVALSHA", arguments: args), timeout: timeout)
        }
    }

    /// GCRA plus a fixed-window quota, atomically.
    ///
    /// KEYS: rate state (string, TAT in µs), quota state (hash: `w` window index, `n` count).
    /// ARGV: emission interval µs, burst, cost, quota limit (0 = none), quota period s, now µs ('' = TIME).
    /// The state key lives at least 10 s: once its TAT is in the past it means the same as no key, so a
    /// longer life changes no decision, and a caller whose clock (`now`) runs slower than Redis's never
    /// sees its state vanish early.
    /// Returns {allowed 0/1, reason (0 ok, 1 rate, 2 quota), remaining, retry-after µs, reset µs,
    /// quota remaining (-1 = none), quota reset µs}.
    static let script = RedisScript(
        """
        local now
        if ARGV[6] ~= '' then
          now = tonumber(ARGV[6])
        else
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        end
        local interval = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local cost = tonumber(ARGV[3])
        local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
        if tat < now then tat = now end
        local new_tat = tat + interval * cost
        local allow_at = new_tat - burst * interval
        if now < allow_at then
          return {0, 1, 0, allow_at - now, tat - now, -1, 0}
        end
        local remaining = math.floor((now - allow_at) / interval)
        local qlimit = tonumber(ARGV[4])
        local qremaining = -1
        local qreset = 0
        if qlimit > 0 then
          local period = tonumber(ARGV[5])
          local window = math.floor(math.floor(now / 1000000) / period)
          local used = 0
          local stored = redis.call('HMGET', KEYS[2], 'w', 'n')
          if tonumber(stored[1]) == window then used = tonumber(stored[2]) or 0 end
          qreset = (window + 1) * period * 1000000 - now
          if used + cost > qlimit then
            return {0, 2, remaining, qreset, new_tat - now - interval * cost, 0, qreset}
          end
          used = used + cost
          redis.call('HSET', KEYS[2], 'w', string.format('%d', window), 'n', string.format('%d', used))
          redis.call('PEXPIRE', KEYS[2], math.ceil(qreset / 1000) + 1000)
          qremaining = qlimit - used
        end
        redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(math.ceil((new_tat - now) / 1000) + 1, 10000))
        return {1, 0, remaining, 0, new_tat - now, qremaining, qreset}
        """)
}

/// The generic cell rate algorithm, in integer microseconds: the same arithmetic as the Lua script in
/// ``RateLimiter``, used by ``LocalRateLimiter`` and to check the script.
///
/// State is one number per client, the theoretical arrival time (TAT) of the next request at the steady
/// rate. A request at `now` is allowed if `max(TAT, now) + T - burst·T ≤ now`, where `T` is the emission
/// interval; then `TAT` advances by `T`. `burst` requests may arrive together on a fresh key.
enum GCRA {
    struct Outcome: Sendable, Hashable {
        var allowed: Bool
        /// The TAT to store (unchanged when refused).
        var newTAT: Int64
        /// Requests that could still be made at `now`.
        var remaining: Int
        /// When refused, how long until a request would be allowed.
        var retryAfterMicroseconds: Int64
        /// How long until the full burst is available again.
        var resetMicroseconds: Int64
    }

    static func decide(tat storedTAT: Int64?, now: Int64, emissionInterval t: Int64, burst: Int, cost: Int = 1) -> Outcome {
        let tat = max(storedTAT ?? now, now)
        let newTAT = tat + t * Int64(cost)
        let allowAt = newTAT - Int64(burst) * t
        if now < allowAt {
            return Outcome(
                allowed: false, newTAT: tat, remaining: 0, retryAfterMicroseconds: allowAt - now,
                resetMicroseconds: tat - now)
        }
        let remaining = Int((now - allowAt) / t)
        return Outcome(allowed: true, newTAT: newTAT, remaining: remaining, retryAfterMicroseconds: 0, resetMicroseconds: newTAT - now)
    }
}

/// NGINX's smooth weighted round robin over a fixed list of peers, with passive-health exclusions.
///
/// Each pick adds every eligible peer's weight to its running score, picks the highest score and
/// subtracts the total eligible weight from it. Weights 5, 1, 1 give `a a b a c a a`, never a burst
/// of five to the heaviest peer.
///
/// A peer marked down (passive health) is skipped until its retry time, and one its active health checks
/// call unhealthy until they call it healthy again; if every weighted peer is down, all are eligible
/// again (trying a peer that may have recovered beats failing every request).
struct SmoothWeightedRoundRobin<Instant: Comparable & Sendable>: Sendable {
    struct Peer: Sendable {
        var weight: Int
        var current: Int = 0
        var downUntil: Instant?
        /// Set by active health checks, apart from `downUntil`: neither undoes the other.
        var unhealthy = false
    }

    private(set) var peers: [Peer]

    init(weights: [Int]) {
        self.peers = weights.map { Peer(weight: max(0, $0)) }
    }

    /// The next peer's index at `now`, or nil when no peer has a weight above 0.
    mutating func next(now: Instant) -> Int? {
        var eligible = false
        for peer in peers where peer.weight > 0 && isUp(peer, now: now) {
            eligible = true
            break
        }
        var total = 0
        var best: Int?
        for i in peers.indices where peers[i].weight > 0 && (!eligible || isUp(peers[i], now: now)) {
            peers[i].current += peers[i].weight
            total += peers[i].weight
            if best.map({ peers[i].current > peers[$0].current }) ?? true { best = i }
        }
        guard let best else { return nil }
        peers[best].current -= total
        return best
    }

    /// Takes the peer out of rotation until `until`.
    mutating func markDown(_ index: Int, until: Instant) {
        guard peers.indices.contains(index) else { return }
        peers[index].downUntil = until
    }

    /// Puts the peer back into rotation at once.
    mutating func markUp(_ index: Int) {
        guard peers.indices.contains(index) else { return }
        peers[index].downUntil = nil
    }

    /// Marks the peer unhealthy (out of rotation) or healthy (by its active health checks).
    mutating func setHealthy(_ index: Int, _ healthy: Bool) {
        guard peers.indices.contains(index) else { return }
        peers[index].unhealthy = !healthy
    }

    func isDown(_ index: Int, now: Instant) -> Bool {
        peers.indices.contains(index) && !isUp(peers[index], now: now)
    }

    private func isUp(_ peer: Peer, now: Instant) -> Bool {
        if peer.unhealthy { return false }
        guard let until = peer.downUntil else { return true }
        return until <= now
    }
}

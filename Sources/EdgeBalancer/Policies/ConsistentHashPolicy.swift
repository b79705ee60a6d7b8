import GatewayCore

/// Consistent hashing with bounded loads: requests with the same key (the client's address, a header or
/// a cookie: ``HashKey``) go to the same node while it is usable, and a node joining or leaving moves
/// only the keys it takes or held, about 1/n of them.
///
/// Each node owns points on a 64-bit ring in proportion to its weight (``pointsPerWeight`` per unit of
/// the tier's mean weight); a key goes to the owner of the first point at or after its hash. Node ids
/// and keys are hashed with ``StableHash``, the same in every process, so every balancer sends a key to
/// the same node.
///
/// Bounded loads (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018): a
/// node whose requests in flight would exceed `balanceFactor` × its weighted share of the tier's total
/// is passed over for the next owner along the ring, so a hot key or a slow node cannot overload one
/// node while the others idle. A factor of 1.25 keeps every node within 25% of its share; the higher
/// the factor, the stickier the keys.
struct ConsistentHashPolicy: BalancingPolicy {
    var kind: PolicyKind { .consistentHash }

    static let pointsPerWeight = 100
    static let defaultBalanceFactor = 1.25

    /// Ring points, sorted by hash: (hash, candidate slot).
    private let ring: [(hash: UInt64, slot: Int)]
    /// Candidates the ring was built for (slots `0..<slotCount`).
    private let slotCount: Int
    let balanceFactor: Double

    init(candidates: [Candidate], balanceFactor: Double) {
        self.balanceFactor = balanceFactor
        self.slotCount = candidates.count
        guard !candidates.isEmpty else {
            ring = []
            return
        }
        let mean = candidates.reduce(0) { $0 + $1.weight } / Double(candidates.count)
        var points: [(hash: UInt64, slot: Int)] = []
        for candidate in candidates {
            let count = max(1, Int((Double(Self.pointsPerWeight) * candidate.weight / mean).rounded()))
            for i in 0..<count {
                points.append((StableHash.of("\(candidate.id)#\(i)"), candidate.slot))
            }
        }
        ring = points.sorted { $0.hash < $1.hash || ($0.hash == $1.hash && $0.slot < $1.slot) }
    }

    mutating func pick<R: RandomNumberGenerator>(from candidates: [Candidate], now: Instant, hash: UInt64?, random: inout R) -> Int {
        guard candidates.count > 1 else { return 0 }
        guard let hash, !ring.isEmpty else { return Int.random(in: 0..<candidates.count, using: &random) }
        // The tier's whole list is indexed by slot; a retry's subset needs a map from slot to index.
        var subset: [Int]?
        if candidates.count != slotCount {
            var index = [Int](repeating: -1, count: slotCount)
            for (i, candidate) in candidates.enumerated() where candidate.slot < slotCount { index[candidate.slot] = i }
            subset = index
        }
        var totalInFlight = 0
        var totalWeight = 0.0
        for candidate in candidates {
            totalInFlight += candidate.load.inFlight
            totalWeight += candidate.weight(at: now)
        }
        let first = lowerBound(hash)
        var fallback: Int?
        for step in 0..<ring.count {
            let slot = ring[(first + step) % ring.count].slot
            let i = subset?[slot] ?? slot
            guard i >= 0 else { continue }
            if fallback == nil { fallback = i }
            let candidate = candidates[i]
            // The bound counts this request: (total + 1) spread by weight, times the factor.
            let share = candidate.weight(at: now) / totalWeight
            let bound = (balanceFactor * Double(totalInFlight + 1) * share).rounded(.up)
            if Double(candidate.load.inFlight + 1) <= bound { return i }
        }
        return fallback ?? 0
    }

    /// The first ring position whose hash is at or after `hash`, wrapping to 0.
    private func lowerBound(_ hash: UInt64) -> Int {
        var low = 0
        var high = ring.count
        while low < high {
            let mid = (low + high) / 2
            if ring[mid].hash < hash { low = mid + 1 } else { high = mid }
        }
        return low == ring.count ? 0 : low
    }
}

/// A 64-bit hash that is the same in every process and on every machine (Swift's `Hasher` is seeded
/// per process): FNV-1a over the bytes, then SplitMix64's finalizer, which spreads FNV's weak low bits.
enum StableHash {
    static func of(_ string: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in string.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return mix(hash)
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

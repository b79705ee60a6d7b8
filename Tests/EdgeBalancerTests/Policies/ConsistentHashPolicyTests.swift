@testable import GatewayCore
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeBalancer

@Suite struct ConsistentHashPolicyTests {
    /// Where each of `keys` goes, by candidate id.
    func placement(_ candidates: [Candidate], keys: [String], factor: Double = 1.25, pool: [Candidate]? = nil) -> [String: String] {
        var policy = ConsistentHashPolicy(candidates: candidates, balanceFactor: factor)
        var random = FastRandom(seed: 1)
        let pool = pool ?? candidates
        var placed: [String: String] = [:]
        for key in keys {
            placed[key] = pool[policy.pick(from: pool, now: .now, hash: StableHash.of(key), random: &random)].id
        }
        return placed
    }

    let keys = (0..<3000).map { "user-\($0)" }

    /// Every process hashes alike (every balancer sends a key to the same node): pinned values.
    @Test func stableHashIsTheSameEverywhere() {
        #expect(StableHash.of("") == StableHash.mix(0xcbf2_9ce4_8422_2325))
        #expect(StableHash.of("user-1") == 0xc499_b5f8_a721_df58)  // FNV-1a then SplitMix64, computed independently
        #expect(StableHash.of("user-1") != StableHash.of("user-2"))
    }

    /// A key goes to the same node every time; 3,000 keys over three equal nodes land within 20% of a
    /// third each, and weights 3:1 give the heavier node 75% ± 5%.
    @Test func keysSpreadByWeightAndStayPut() {
        let now = ContinuousClock.now
        let equal = makeCandidates(weights: [1, 1, 1], now: now)
        let first = placement(equal, keys: keys)
        #expect(placement(equal, keys: keys) == first)
        for id in ["a", "b", "c"] {
            let count = first.values.filter { $0 == id }.count
            #expect(count > 800 && count < 1200, "\(id): \(count) of 3000")
        }
        let weighted = placement(makeCandidates(weights: [3, 1], now: now), keys: keys)
        let heavy = Double(weighted.values.filter { $0 == "a" }.count) / 3000
        #expect(heavy > 0.70 && heavy < 0.80, "heavy share \(heavy)")
    }

    /// A node leaving moves only its own keys; the keys of every other node stay where they were.
    @Test func aNodeLeavingMovesOnlyItsKeys() {
        let now = ContinuousClock.now
        let four = makeCandidates(weights: [1, 1, 1, 1], now: now)
        let before = placement(four, keys: keys)
        let after = placement(Array(four.prefix(3)), keys: keys)
        let moved = keys.filter { before[$0] != after[$0] }
        #expect(moved.allSatisfy { before[$0] == "d" }, "only d's keys move")
        #expect(moved.count == before.values.filter { $0 == "d" }.count)
        #expect(moved.count > 500 && moved.count < 1000, "\(moved.count): about a quarter")
    }

    /// A node whose requests in flight pass its bound (factor × its share of the total + 1) is passed
    /// over for the next node along the ring; other nodes keep their keys.
    @Test func boundedLoadsPassOverABusyNode() {
        let now = ContinuousClock.now
        let candidates = makeCandidates(weights: [1, 1, 1], now: now)
        let idle = placement(candidates, keys: keys)
        for _ in 0..<10 { candidates[0].load.requestStarted() }
        let busy = placement(candidates, keys: keys)
        #expect(!busy.values.contains("a"), "a: 10 in flight, bound ceil(1.25 × 11 / 3) = 5")
        #expect(keys.filter { idle[$0] != "a" }.allSatisfy { busy[$0] == idle[$0] })
        // Without a bound worth the name, the keys stay on their node however busy.
        let sticky = placement(candidates, keys: keys, factor: 100)
        #expect(sticky == idle)
    }

    /// A retry (the failed node excluded) goes to the key's next node along the ring, the same each time.
    @Test func retryGoesToTheNextNodeOnTheRing() {
        let now = ContinuousClock.now
        let candidates = makeCandidates(weights: [1, 1, 1], now: now)
        let all = placement(candidates, keys: keys)
        let withoutA = placement(candidates, keys: keys, pool: candidates.filter { $0.id != "a" })
        #expect(keys.filter { all[$0] != "a" }.allSatisfy { withoutA[$0] == all[$0] })
        #expect(!withoutA.values.contains("a"))
        #expect(placement(candidates, keys: keys, pool: candidates.filter { $0.id != "a" }) == withoutA)
    }

    /// `hash.key`: `ip`, `header:<name>`, `cookie:<name>`; a request without the field or cookie is
    /// hashed by its client's address.
    @Test func hashKeysReadTheRequest() throws {
        #expect(HashKey(parsing: "ip") == .clientIP)
        #expect(HashKey(parsing: "header:X-User") == .header("X-User"))
        #expect(HashKey(parsing: "cookie:sid") == .cookie("sid"))
        for bad in ["", "header:", "cookie:a=b", "query:x", "IP", "header:a b"] { #expect(HashKey(parsing: bad) == nil, "\(bad)") }

        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        head.headers.add(name: "x-user", value: "alice")
        head.headers.add(name: "Cookie", value: "theme=dark; list=a,b; sid=s-42")
        let request = ProxyRequest(
            head: head, forwarded: ForwardedFields(forwardedFor: "10.0.0.9", proto: "http", host: "h", requestID: "r"), requestID: "r",
            clientIP: "10.0.0.9", scheme: "http", host: "h", httpVersion: .http1_1,
            startedAt: .now())
        #expect(HashKey.header("X-User").value(of: request) == "alice")
        #expect(HashKey.cookie("sid").value(of: request) == "s-42")
        #expect(HashKey.cookie("theme").value(of: request) == "dark")
        #expect(HashKey.cookie("list").value(of: request) == "a,b", "a comma inside a cookie's value")
        #expect(HashKey.cookie("missing").value(of: request) == nil)
        #expect(HashKey.cookie("missing").hash(request) == StableHash.of("10.0.0.9"))
        #expect(HashKey.clientIP.hash(request) == StableHash.of("10.0.0.9"))
        #expect(HashKey.header("X-User").hash(request) == StableHash.of("alice"))
    }
}

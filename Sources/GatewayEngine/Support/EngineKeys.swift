import GatewayCore

/// The Redis key names the engine reads and writes, all under one configurable prefix (default `gc`).
///
/// The names the other services share come from ``ClusterKeys``; this adds the engine's own. Keys one
/// script or transaction touches together share a hash tag, so the same commands work on Redis Cluster:
/// the definitions hash, its version counter and epoch share `{apis}`; the rate-limit and quota state of
/// one (API, client) pair share `{<api>:<client>}`. Per-client keys (rate-limit state, API keys) spread
/// across slots.
struct EngineKeys: Sendable, Hashable {
    let cluster: ClusterKeys

    init(prefix: String = "gc") {
        self.cluster = ClusterKeys(prefix: prefix)
    }

    var prefix: String { cluster.prefix }

    /// Hash: API id → definition JSON.
    var apis: String { cluster.apis }
    /// Integer bumped with every change to ``apis``, in the same script.
    var apisVersion: String { cluster.apisVersion }
    /// Random id set with the first change, so a version counter restarted from zero is told apart.
    var apisEpoch: String { "\(prefix):{apis}:epoch" }
    /// Pub/sub channel for `apis_changed`, `key_revoked` and the other services' events.
    var events: String { cluster.events }
    /// String: the policy JSON of the API key whose SHA-256 is `hash`.
    func apiKey(hash: String) -> String { cluster.apiKey(hash: hash) }
    /// Hash: key id → record JSON with the full hash, for listing and revoking by id.
    var apiKeyIndex: String { "\(prefix):keys" }

    /// GCRA state (theoretical arrival time, µs) of one client of one API.
    func rateLimit(api: String, client: String) -> String { "\(prefix):rl:{\(Self.tag(api: api, client: client))}" }
    /// Quota window and count of one client of one API; same hash tag as ``rateLimit(api:client:)``.
    func quota(api: String, client: String) -> String { "\(prefix):rq:{\(Self.tag(api: api, client: client))}" }

    /// `api:client` when the client id is plain text; otherwise a hash of it, so braces or odd bytes in
    /// a JWT claim can never break the hash tag.
    static func tag(api: String, client: String) -> String {
        let plain =
            client.utf8.count <= 128
            && client.utf8.allSatisfy { b in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || "._-@:".utf8.contains(b)
            }
        if plain { return "\(api):\(client)" }
        return "\(api):#\(SHA256Hex.of(client).prefix(32))"
    }
}

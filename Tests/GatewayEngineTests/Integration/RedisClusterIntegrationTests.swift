import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// Two engines on a three-master Redis Cluster (`redis.cluster: true`) instead of one server.
    @Suite struct OnRedisCluster {
        /// A definition written through one engine is served by both; a key created through one works on
        /// both and, revoked, stops working on the other within 1 s; and a per-key rate limit stays exact
        /// across the two (burst 20 of 60 requests). The definitions, the key record and the rate-limit
        /// state hash to different slots, so more than one master serves them.
        @Test func twoEnginesShareDefinitionsKeysAndExactLimits() async throws {
            try await withBackends(["clustered"]) { backends in
                try await withEngines(count: 2, onRedisCluster: true) { cluster in
                    let (one, two) = (cluster.engines[0], cluster.engines[1])
                    try await cluster.putAPI(
                        apiJSON(
                            "clustered", path: "/clustered", targets: [backends[0].port],
                            extra: #""auth":{"mode":"api_key"},"rate_limit":{"rate":1,"period_seconds":60,"burst":20}"#))
                    #expect(two.definitionsVersion == one.definitionsVersion)

                    let (key, id) = try await cluster.createKey(#"{"name":"on-cluster","allowed_apis":["clustered"]}"#)
                    var statuses: [Int: Int] = [:]
                    for i in 0..<60 {
                        let engine = i % 2 == 0 ? one : two
                        let response = try await engine.send(.GET, "/clustered/x", headers: [("X-API-Key", key)])
                        statuses[response.status, default: 0] += 1
                    }
                    #expect(statuses == [200: 20, 429: 40], "\(statuses)")
                    #expect(backends[0].requestCount == 20)

                    let redisCluster = try #require(cluster.redisCluster)
                    var holding = 0
                    for admin in redisCluster.admins where (try await admin.send("DBSIZE").int ?? 0) > 0 { holding += 1 }
                    #expect(holding >= 2, "the cluster's keys are on \(holding) master(s)")

                    #expect(try await one.admin(.DELETE, "/keys/\(id)").status == 200)
                    try await waitUntil("engine 2 to refuse the revoked key", timeout: .seconds(1), interval: .milliseconds(5)) {
                        try await two.send(.GET, "/clustered/x", headers: [("X-API-Key", key)]).status == 401
                    }
                }
            }
        }
    }
}

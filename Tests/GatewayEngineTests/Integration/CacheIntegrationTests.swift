import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// The response cache, seen from a client and from the backend.
    @Suite struct Cache {
        static let cached = #""cache":{"enabled":true,"ttl_seconds":60}"#

        /// The second GET of a resource is `X-Cache: HIT` with the same body, and the backend saw one
        /// request.
        @Test func secondGetIsAHitAndTheBackendSawOneRequest() async throws {
            try await withBackends(["origin"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("cached", path: "/cached", targets: [backends[0].port], extra: Self.cached))
                    let first = try await cluster.first.send(.GET, "/cached/item?id=1")
                    let second = try await cluster.first.send(.GET, "/cached/item?id=1")
                    #expect(first.status == 200 && second.status == 200)
                    #expect(first.header("X-Cache") == "MISS")
                    #expect(second.header("X-Cache") == "HIT")
                    #expect(second.header("Age") != nil)
                    #expect(second.body == first.body)
                    #expect(second.header("X-Request-ID") != first.header("X-Request-ID"), "a hit still gets its own request id")
                    #expect(backends[0].requestCount == 1)
                    #expect(try await cluster.first.send(.GET, "/cached/item?id=2").header("X-Cache") == "MISS", "the query is part of the key")
                    #expect(backends[0].requestCount == 2)
                }
            }
        }

        /// 30 concurrent GETs of a resource not yet cached make one backend request (coalescing), and
        /// all 30 get its body.
        @Test func concurrentMissesForOneKeyMakeOneBackendRequest() async throws {
            try await withBackends(["slow"]) { backends in
                backends[0].setDelay(.milliseconds(300))
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("coalesced", path: "/c", targets: [backends[0].port], extra: Self.cached))
                    let port = cluster.first.port
                    let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                        for _ in 0..<30 {
                            group.addTask { try await TestHTTP.send(.GET, port: port, "/c/popular") }
                        }
                        return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
                    }
                    #expect(responses.count == 30)
                    #expect(responses.allSatisfy { $0.status == 200 && $0.backend == "slow" })
                    #expect(Set(responses.map(\.body)).count == 1)
                    #expect(backends[0].requestCount == 1, "one backend request for 30 concurrent misses")
                    #expect(responses.filter { $0.header("X-Cache") == "MISS" }.count == 1)
                }
            }
        }

        /// A backend response with `Cache-Control: no-store` is never stored: every GET goes to the backend.
        @Test func noStoreResponsesAreNotCached() async throws {
            try await withBackends(["private"]) { backends in
                backends[0].setResponseHeader("Cache-Control", "no-store")
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("nostore", path: "/ns", targets: [backends[0].port], extra: Self.cached))
                    for _ in 0..<3 {
                        let response = try await cluster.first.send(.GET, "/ns/secret")
                        #expect(response.status == 200)
                        #expect(response.header("X-Cache") == "MISS")
                        #expect(response.header("Cache-Control") == "no-store")
                    }
                    #expect(backends[0].requestCount == 3)
                }
            }
        }

        /// A purge by API empties only that API's entries; a purge of everything empties the rest; the
        /// next request after each is a MISS.
        @Test func purgeByAPIAndPurgeAllMakeTheNextRequestAMiss() async throws {
            try await withBackends(["one", "two"]) { backends in
                try await withEngines { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(apiJSON("one", path: "/one", targets: [backends[0].port], extra: Self.cached))
                    try await cluster.putAPI(apiJSON("two", path: "/two", targets: [backends[1].port], extra: Self.cached))
                    for path in ["/one/r", "/two/r"] {
                        #expect(try await engine.send(.GET, path).header("X-Cache") == "MISS")
                        #expect(try await engine.send(.GET, path).header("X-Cache") == "HIT")
                    }

                    let byAPI = try await engine.admin(.POST, "/cache/purge", json: #"{"scope":"api","api":"one"}"#)
                    #expect(byAPI.status == 200)
                    #expect(byAPI.json?["purged"] as? Int == 1)
                    #expect(try await engine.send(.GET, "/one/r").header("X-Cache") == "MISS")
                    #expect(try await engine.send(.GET, "/two/r").header("X-Cache") == "HIT", "another API's entries stay")

                    let all = try await engine.admin(.POST, "/cache/purge", json: #"{"scope":"all"}"#)
                    #expect(all.status == 200)
                    #expect(all.json?["purged"] as? Int == 2)
                    #expect(try await engine.send(.GET, "/one/r").header("X-Cache") == "MISS")
                    #expect(try await engine.send(.GET, "/two/r").header("X-Cache") == "MISS")
                    #expect(backends[0].requestCount == 3)
                    #expect(backends[1].requestCount == 2)
                }
            }
        }
    }
}

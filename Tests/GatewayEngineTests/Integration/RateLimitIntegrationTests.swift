import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// Cluster-wide rate limits: engines sharing one Redis admit the configured rate between them.
    @Suite struct RateLimits {
        /// Burst 20 and one request a minute: 100 requests from one client spread over two engines get
        /// exactly 20 × 200 and 80 × 429, and the 429s carry `Retry-After` and `X-RateLimit-*`.
        @Test func twoEnginesTogetherAdmitExactlyTheBurst() async throws {
            try await withBackends(["limited"]) { backends in
                try await withEngines(count: 2) { cluster in
                    try await cluster.putAPI(
                        apiJSON(
                            "limited", path: "/limited", targets: [backends[0].port],
                            extra: #""rate_limit":{"rate":1,"period_seconds":60,"burst":20}"#))
                    let results = Shared<[TestResponse]>([])
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for worker in 0..<4 {
                            let engine = cluster.engines[worker % 2]
                            group.addTask {
                                try await TestHTTP.withConnection(port: engine.port, timeout: .seconds(10)) { connection in
                                    for _ in 0..<25 {
                                        let response = try await connection.send(.GET, "/limited/x")
                                        results.withLock { $0.append(response) }
                                    }
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    let all = results.value
                    // Every status with its count, and the errors of anything neither 200 nor 429, so a
                    // failed count explains itself.
                    let histogram = Dictionary(grouping: all, by: \.status).mapValues(\.count).sorted { $0.key < $1.key }
                    let others = all.filter { $0.status != 200 && $0.status != 429 }.map { "\($0.status) \($0.string("error") ?? "")" }
                    let explanation = "statuses: \(histogram), others: \(others)"
                    #expect(all.count == 100, "\(explanation)")
                    let ok = all.filter { $0.status == 200 }
                    let limited = all.filter { $0.status == 429 }
                    #expect(ok.count == 20, "\(explanation)")
                    #expect(limited.count == 80, "\(explanation)")
                    #expect(backends[0].requestCount == 20, "\(explanation)")
                    for response in ok {
                        #expect(response.header("X-RateLimit-Limit") == "20")
                        #expect(response.header("X-RateLimit-Remaining").flatMap { Int($0) }.map { (0..<20).contains($0) } == true)
                    }
                    #expect(
                        Set(ok.compactMap { $0.header("X-RateLimit-Remaining") }).count == 20, "each admitted request saw a different remaining count"
                    )
                    for response in limited {
                        let retryAfter = try #require(response.header("Retry-After").flatMap { Int($0) })
                        #expect((1...60).contains(retryAfter))
                        #expect(response.header("X-RateLimit-Limit") == "20")
                        #expect(response.header("X-RateLimit-Remaining") == "0")
                        #expect(response.header("X-RateLimit-Reset").flatMap { Int($0) }.map { $0 > 0 } == true)
                        #expect(response.string("error") == "rate limit exceeded")
                        #expect(response.string("request_id") == response.header("X-Request-ID"))
                    }
                }
            }
        }
    }
}

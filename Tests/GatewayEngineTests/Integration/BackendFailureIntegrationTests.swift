import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// Backends that refuse, stall or die.
    @Suite struct BackendFailures {
        /// A target that refuses connections gives a JSON 502 carrying the request id.
        @Test func refusedTargetGives502WithRequestID() async throws {
            let closedPort = try await LoopbackPort.free()
            try await withEngines { cluster in
                try await cluster.putAPI(apiJSON("down", path: "/down", targets: [closedPort]))
                let response = try await cluster.first.send(.GET, "/down/x", headers: [("X-Request-ID", "trace-502")])
                #expect(response.status == 502)
                #expect(response.header("Content-Type") == "application/json")
                #expect(response.string("request_id") == "trace-502")
                #expect(response.header("X-Request-ID") == "trace-502")
            }
        }

        /// A backend slower than the API's response timeout (200 ms) gives 504, soon after the timeout.
        @Test func slowBackendBeyondTheResponseTimeoutGives504() async throws {
            try await withBackends(["sluggish"]) { backends in
                backends[0].setDelay(.seconds(2))
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("slow", path: "/slow", targets: [backends[0].port], extra: #""timeouts":{"response_ms":200}"#))
                    let start = ContinuousClock.now
                    let response = try await cluster.first.send(.GET, "/slow/x")
                    let elapsed = ContinuousClock.now - start
                    #expect(response.status == 504)
                    #expect(response.string("request_id") == response.header("X-Request-ID"))
                    #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(1), "answered after \(elapsed)")
                }
            }
        }

        /// An API with two targets, one refusing connections: every request succeeds (retried on the
        /// live target, and the dead one is then skipped), for plain and cached APIs alike.
        @Test func oneOfTwoTargetsDownAllRequestsSucceed() async throws {
            let closedPort = try await LoopbackPort.free()
            try await withBackends(["alive"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("pair", path: "/pair", targets: [closedPort, backends[0].port]))
                    try await cluster.putAPI(
                        apiJSON("cachedpair", path: "/cpair", targets: [closedPort, backends[0].port], extra: #""cache":{"enabled":true}"#))
                    var statuses: [Int] = []
                    for i in 0..<20 {
                        let response = try await cluster.first.send(.GET, "/pair/\(i)")
                        statuses.append(response.status)
                        #expect(response.backend == "alive")
                    }
                    for i in 0..<10 {
                        statuses.append(try await cluster.first.send(.GET, "/cpair/\(i)").status)
                    }
                    #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
                    #expect(backends[0].requestCount == 30)
                }
            }
        }
    }
}

import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// HTTP/1.1 pipelining and h2c on the data listener.
    @Suite struct Protocols {
        /// Three GETs written at once on one connection, the first to a slow backend, are answered in
        /// the order they were sent.
        @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
            try await withBackends(["slow", "fast"]) { backends in
                backends[0].setDelay(.milliseconds(150))
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("slow", path: "/slow", targets: [backends[0].port]))
                    try await cluster.putAPI(apiJSON("fast", path: "/fast", targets: [backends[1].port]))
                    let requests =
                        "GET /slow/1 HTTP/1.1\r\nHost: a\r\nX-Request-ID: first\r\n\r\n"
                        + "GET /fast/2 HTTP/1.1\r\nHost: a\r\nX-Request-ID: second\r\n\r\n"
                        + "GET /slow/3 HTTP/1.1\r\nHost: a\r\nX-Request-ID: third\r\nConnection: close\r\n\r\n"
                    let bytes = try await RawTCP.exchange(port: cluster.first.port, request: Array(requests.utf8), timeout: .seconds(5)) { _ in false
                    }
                    let responses = parseRawResponses(bytes)
                    #expect(responses.map(\.status) == [200, 200, 200])
                    #expect(responses.map { $0.string("uri") } == ["/slow/1", "/fast/2", "/slow/3"])
                    #expect(responses.map(\.backend) == ["slow", "fast", "slow"])
                    #expect(responses.map { $0.header("X-Request-ID") } == ["first", "second", "third"])
                }
            }
        }

        /// `curl --http2-prior-knowledge` (h2c) is proxied like HTTP/1.1, keyed APIs included.
        @Test func h2cWithPriorKnowledgeIsServed() async throws {
            try await withBackends(["h2"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("h2", path: "/h2", targets: [backends[0].port]))
                    try await cluster.putAPI(apiJSON("h2keyed", path: "/h2k", targets: [backends[0].port], extra: #""auth":{"mode":"api_key"}"#))
                    let (key, _) = try await cluster.createKey(#"{"name":"h2"}"#)
                    let url = "http://127.0.0.1:\(cluster.first.port)"
                    let plain = try await runCurl(["-i", "--http2-prior-knowledge", "-H", "X-Request-ID: over-h2", "\(url)/h2/stream?q=1"])
                    #expect(plain.status == 0)
                    #expect(plain.output.hasPrefix("HTTP/2 200"), "\(plain.output)")
                    #expect(plain.output.lowercased().contains("x-request-id: over-h2"))
                    #expect(plain.output.contains(#""uri":"/h2/stream?q=1""#))
                    #expect(plain.output.contains(#""x-forwarded-proto":"http""#))

                    let keyed = try await runCurl(["-i", "--http2-prior-knowledge", "-H", "X-API-Key: \(key)", "\(url)/h2k/x"])
                    #expect(keyed.output.hasPrefix("HTTP/2 200"), "\(keyed.output)")
                    let refused = try await runCurl(["-i", "--http2-prior-knowledge", "\(url)/h2k/x"])
                    #expect(refused.output.hasPrefix("HTTP/2 401"), "\(refused.output)")
                    #expect(backends[0].requestCount == 2)
                }
            }
        }
    }
}

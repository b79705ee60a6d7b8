import Foundation
import GatewayCore
import GatewayTesting
import Testing

/// TLS on every hop, with the built binaries: a client calls an edge-balancer, which reaches a
/// gateway-engine's TLS listener (`upstream.tls`, the engine's certificate verified against
/// `upstream.caFile`), which forwards to an `https://` backend (verified against `backends.caFile`).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct TLSChainTests {
    static let token = "tls-chain-test-token-0123456789abcdef"

    @Test func balancerToEngineToBackendOverTLS() async throws {
        let directory = try makeTemporaryDirectory("tls-chain")
        defer { removeDirectory(directory) }
        let certificates = try await TestCertificates.make()
        let backend = try await TestHTTPBackend.start(name: "tls-backend", tls: (certificates.namedServerCertFile, certificates.namedServerKeyFile))
        defer { Task { await backend.stop() } }
        try await withRedisServer { redis in
            let ports = try await [LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free()]
            let (engineAdmin, enginePlain, engineTLS, balancerAdmin, balancerPort) = (ports[0], ports[1], ports[2], ports[3], ports[4])
            let engine = try ServiceProcess.launch(
                try ServiceBinary.engine.path(),
                [
                    "--set", "admin.token=\(Self.token)", "--set", "admin.port=\(engineAdmin)", "--set", "listen.port=\(enginePlain)",
                    "--set", "redis.url=redis://\(redis.url.address)", "--set", "tls.port=\(engineTLS)",
                    "--set", "tls.certFile=\(certificates.serverCertFile)", "--set", "tls.keyFile=\(certificates.serverKeyFile)",
                    "--set", "backends.caFile=\(certificates.caFile)",
                ], logPath: directory + "/engine.log")
            let balancer = try ServiceProcess.launch(
                try ServiceBinary.balancer.path(),
                [
                    "--set", "admin.token=\(Self.token)", "--set", "admin.port=\(balancerAdmin)", "--set", "listen.port=\(balancerPort)",
                    "--set", "discovery.redis=false", "--set", "nodes.static=id=engine,host=127.0.0.1,port=\(engineTLS)",
                    "--set", "upstream.tls=true", "--set", "upstream.caFile=\(certificates.caFile)", "--set", "health.interval=200ms",
                ], logPath: directory + "/balancer.log")
            defer {
                engine.signal(SIGKILL)
                balancer.signal(SIGKILL)
            }
            do {
                try await waitUntil("the engine's admin API", timeout: .seconds(30), interval: .milliseconds(100)) {
                    try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(engineAdmin)/ready"]).output == "200"
                }
                let api = #"{"id":"secure","listen_path":"/secure","strip_listen_path":true,"targets":[{"url":"https://localhost:\#(backend.port)"}]}"#
                let put = try await runCurl([
                    "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "Authorization: Bearer \(Self.token)",
                    "-H", "Content-Type: application/json", "--data", api, "http://127.0.0.1:\(engineAdmin)/apis/secure",
                ])
                #expect(put.output.hasPrefix("20"), "PUT /apis/secure: \(put.output)")
                // The engine's TLS listener, by curl trusting the test CA, with HTTP/2 by ALPN.
                try await waitUntil("the API on the engine's TLS listener", timeout: .seconds(10), interval: .milliseconds(100)) {
                    try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.caFile, "--http2",
                        "https://127.0.0.1:\(engineTLS)/secure/x"]).output == "200"
                }
                // The whole chain, once the balancer's TLS health checks found the engine healthy.
                try await waitUntil("a request through the balancer", timeout: .seconds(10), interval: .milliseconds(100)) {
                    try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(balancerPort)/secure/y"]).output == "200"
                }
                let body = try await runCurl(["http://127.0.0.1:\(balancerPort)/secure/z"]).output
                #expect(body.contains("tls-backend"), "\(body)")
                let forwarded = backend.requestCount
                #expect(forwarded >= 3, "the backend answered over TLS: \(forwarded)")
            } catch {
                Issue.record("engine: \(engine.logTail())\nbalancer: \(balancer.logTail())")
                throw error
            }
        }
    }
}

import Foundation
import GatewayCore
import GatewayTesting
import Testing

/// TLS on every hop, with the built binaries: a client calls an edge-balancer, which reaches a
/// gateway-engine's TLS listener (`upstream.tls` with HTTP/2, `upstream.protocol: h2`; health checks
/// over HTTP/1.1; the engine's certificate verified against
/// `upstream.caFile`; mutual TLS: the engine requires a client certificate signed by `tls.clientCaFile`,
/// the balancer shows `upstream.certFile`), which forwards to an `https://` backend (verified against
/// `backends.caFile`). The engine's plain listener is on another address than its TLS one (`listen.host`
/// against `tls.host`). SIGHUP makes the balancer reread its client TLS files.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct TLSChainTests {
    static let token = "tls-chain-test-token-0123456789abcdef"

    @Test func balancerToEngineToBackendOverTLS() async throws {
        let directory = try makeTemporaryDirectory("tls-chain")
        defer { removeDirectory(directory) }
        let certificates = try await TestCertificates.make()
        // The balancer's CA file is a copy the test replaces before a SIGHUP.
        let balancerCA = directory + "/balancer-ca.crt"
        try FileManager.default.copyItem(atPath: certificates.caFile, toPath: balancerCA)
        let backend = try await TestHTTPBackend.start(name: "tls-backend", tls: (certificates.namedServerCertFile, certificates.namedServerKeyFile))
        defer { Task { await backend.stop() } }
        try await withRedisServer { redis in
            let ports = try await [LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free()]
            let (engineAdmin, enginePlain, engineTLS, balancerAdmin, balancerPort) = (ports[0], ports[1], ports[2], ports[3], ports[4])
            let engine = try ServiceProcess.launch(
                try ServiceBinary.engine.path(),
                [
                    "--set", "admin.token=\(Self.token)", "--set", "admin.port=\(engineAdmin)", "--set", "listen.port=\(enginePlain)",
                    "--set", "listen.host=127.0.0.2", "--set", "tls.host=127.0.0.1",
                    "--set", "redis.url=redis://\(redis.url.address)", "--set", "tls.port=\(engineTLS)",
                    "--set", "tls.certFile=\(certificates.serverCertFile)", "--set", "tls.keyFile=\(certificates.serverKeyFile)",
                    "--set", "tls.clientCaFile=\(certificates.caFile)", "--set", "backends.caFile=\(certificates.caFile)",
                ], logPath: directory + "/engine.log")
            let balancer = try ServiceProcess.launch(
                try ServiceBinary.balancer.path(),
                [
                    "--set", "admin.token=\(Self.token)", "--set", "admin.port=\(balancerAdmin)", "--set", "listen.port=\(balancerPort)",
                    "--set", "discovery.redis=false", "--set", "nodes.static=id=engine,host=127.0.0.1,port=\(engineTLS)",
                    "--set", "upstream.tls=true", "--set", "upstream.caFile=\(balancerCA)", "--set", "health.interval=200ms",
                    "--set", "upstream.certFile=\(certificates.clientCertFile)", "--set", "upstream.keyFile=\(certificates.clientKeyFile)",
                    "--set", "health.fall=1", "--set", "health.rise=1", "--set", "upstream.protocol=h2",
                ], logPath: directory + "/balancer.log")
            defer {
                engine.signal(SIGKILL)
                balancer.signal(SIGKILL)
            }
            do {
                try await waitUntil("the engine's admin API", timeout: .seconds(30), interval: .milliseconds(100)) {
                    try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(engineAdmin)/ready"]).output == "200"
                }
                let api =
                    #"{"id":"secure","listen_path":"/secure","strip_listen_path":true,"targets":[{"url":"https://localhost:\#(backend.port)"}]}"#
                let put = try await runCurl([
                    "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "Authorization: Bearer \(Self.token)",
                    "-H", "Content-Type: application/json", "--data", api, "http://127.0.0.1:\(engineAdmin)/apis/secure",
                ])
                #expect(put.output.hasPrefix("20"), "PUT /apis/secure: \(put.output)")
                // The engine's TLS listener, by curl trusting the test CA and showing the client certificate,
                // with HTTP/2 by ALPN.
                let clientCertificate = ["--cert", certificates.clientCertFile, "--key", certificates.clientKeyFile]
                try await waitUntil("the API on the engine's TLS listener", timeout: .seconds(10), interval: .milliseconds(100)) {
                    try await runCurl(
                        ["-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.caFile, "--http2"] + clientCertificate
                            + ["https://127.0.0.1:\(engineTLS)/secure/x"]
                    ).output == "200"
                }
                // Each listener on its own address only: plain on 127.0.0.2, TLS on 127.0.0.1.
                let plain = try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.2:\(enginePlain)/secure/x"])
                #expect(plain.output == "200", "the plain listener on listen.host: \(plain)")
                for url in ["http://127.0.0.1:\(enginePlain)/secure/x", "https://127.0.0.2:\(engineTLS)/secure/x"] {
                    let refused = try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "-k", url])
                    #expect(refused.status == 7, "nothing listens at \(url): \(refused)")
                }
                // Without a client certificate, or with one the client CA did not sign, no request is made.
                let before = backend.requestCount
                let anonymous = try await runCurl([
                    "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.caFile,
                    "https://127.0.0.1:\(engineTLS)/secure/x",
                ])
                #expect(anonymous.status != 0 && anonymous.output == "000", "no client certificate: \(anonymous)")
                let stranger = try await runCurl([
                    "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates.caFile,
                    "--cert", certificates.otherCAFile, "--key", certificates.otherCAKeyFile, "https://127.0.0.1:\(engineTLS)/secure/x",
                ])
                #expect(stranger.status != 0 && stranger.output == "000", "an untrusted client certificate: \(stranger)")
                #expect(backend.requestCount == before, "refused handshakes reached no backend")
                let metrics = try await runCurl(["-H", "Authorization: Bearer \(Self.token)", "http://127.0.0.1:\(engineAdmin)/metrics"]).output
                let refused = metrics.split(separator: "\n").first { $0.hasPrefix("gc_engine_tls_handshake_failures_total ") }
                #expect(refused == "gc_engine_tls_handshake_failures_total 2", "\(refused ?? "no gc_engine_tls_handshake_failures_total")")
                // The whole chain, once the balancer's TLS health checks found the engine healthy.
                try await waitUntil("a request through the balancer", timeout: .seconds(10), interval: .milliseconds(100)) {
                    try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(balancerPort)/secure/y"]).output == "200"
                }
                let body = try await runCurl(["http://127.0.0.1:\(balancerPort)/secure/z"]).output
                #expect(body.contains("tls-backend"), "\(body)")
                let forwarded = backend.requestCount
                #expect(forwarded >= 3, "the backend answered over TLS: \(forwarded)")

                // SIGHUP rereads the balancer's client TLS files: with another CA in place of the one that
                // signed the engine's certificate, its health checks (a new connection each) fail; with
                // the right one back, they pass again.
                let nodeHealth = { () async throws -> String in
                    try await runCurl(["-H", "Authorization: Bearer \(Self.token)", "http://127.0.0.1:\(balancerAdmin)/nodes/engine"]).output
                }
                try FileManager.default.removeItem(atPath: balancerCA)
                try FileManager.default.copyItem(atPath: certificates.otherCAFile, toPath: balancerCA)
                balancer.signal(SIGHUP)
                try await waitUntil("the engine unhealthy for the balancer", timeout: .seconds(10), interval: .milliseconds(100)) {
                    try await nodeHealth().contains("\"active\":\"unhealthy\"")
                }
                #expect(balancer.output.contains("client tls files reloaded"), "\(balancer.logTail())")
                try FileManager.default.removeItem(atPath: balancerCA)
                try FileManager.default.copyItem(atPath: certificates.caFile, toPath: balancerCA)
                balancer.signal(SIGHUP)
                try await waitUntil("the engine healthy again", timeout: .seconds(10), interval: .milliseconds(100)) {
                    try await nodeHealth().contains("\"active\":\"healthy\"")
                }
            } catch {
                Issue.record("engine: \(engine.logTail())\nbalancer: \(balancer.logTail())")
                throw error
            }
        }
    }
}

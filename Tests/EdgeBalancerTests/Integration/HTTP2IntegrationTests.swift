import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeBalancer

extension IntegrationTests {
    /// HTTP/2 clients through the balancer: h2c with prior knowledge on the plain listener, h2 over TLS
    /// (ALPN) on the TLS listener, with curl and h2load.
    @Suite struct HTTP2 {
        /// Makes a self-signed certificate for 127.0.0.1 in a fresh directory.
        func makeCertificate() async throws -> (cert: String, key: String, directory: String) {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("balancer-tls-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let cert = "\(directory)/cert.pem"
            let key = "\(directory)/key.pem"
            let (status, output) = try await runTool(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
                ])
            #expect(status == 0, "openssl: \(output)")
            return (cert, key, directory)
        }

        /// curl speaks HTTP/2 over TLS (ALPN) and h2c to the balancer, and h2load's requests all succeed.
        @Test(
            .enabled(
                if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"))
        )
        func http2ThroughTLSAndH2C() async throws {
            let (cert, key, directory) = try await makeCertificate()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await withBackends(["a", "b"]) { backends in
                let nodes = backends.map { $0.staticEntry() }.joined(separator: ";")
                try await withBalancer([
                    "discovery.redis": "false", "nodes.static": nodes, "policy": "round_robin",
                    "tls.port": "0", "tls.certFile": cert, "tls.keyFile": key,
                ]) { balancer in
                    let tlsPort = try #require(try await balancer.app.tlsFront?.listeningAddress.port)
                    let tls = try await runTool(
                        "/usr/bin/curl",
                        [
                            "-sS", "--http2", "-k", "-w", " %{http_version}", "https://127.0.0.1:\(tlsPort)/x",
                        ])
                    #expect(tls.status == 0)
                    #expect(["a 2", "b 2"].contains(tls.output), "curl over TLS: \(tls.output)")
                    let h2c = try await runTool(
                        "/usr/bin/curl",
                        [
                            "-sS", "--http2-prior-knowledge", "-w", " %{http_version}", "http://127.0.0.1:\(balancer.port)/x",
                        ])
                    #expect(["a 2", "b 2"].contains(h2c.output), "curl h2c: \(h2c.output)")
                    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/h2load") else { return }
                    for url in ["https://127.0.0.1:\(tlsPort)/x", "http://127.0.0.1:\(balancer.port)/x"] {
                        let load = try await runTool("/usr/bin/h2load", ["-n", "400", "-c", "4", "-m", "10", url])
                        #expect(load.status == 0)
                        #expect(load.output.contains("400 succeeded, 0 failed, 0 errored"), "h2load \(url): \(load.output)")
                    }
                    #expect(backends[0].served + backends[1].served == 802)
                }
            }
        }
    }
}

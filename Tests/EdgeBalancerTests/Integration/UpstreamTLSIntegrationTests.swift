import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import Testing

@testable import EdgeBalancer

extension IntegrationTests {
    /// `upstream.tls`: the balancer reaches its nodes over TLS (real TLS backends, certificates made by
    /// openssl for the run), requests and active health checks alike.
    @Suite struct UpstreamTLS {
        func get(_ url: String) async throws -> String {
            try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", url]).output
        }

        /// Nodes whose certificates chain to `upstream.caFile`: health checks pass over TLS (both usable)
        /// and requests are spread over both.
        @Test func trustedNodes() async throws {
            let certificates = try await TestCertificates.make()
            let tls = (certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile)
            let a = try await TestHTTPBackend.start(name: "a", tls: tls)
            let b = try await TestHTTPBackend.start(name: "b", tls: tls)
            defer {
                Task {
                    await a.stop()
                    await b.stop()
                }
            }
            a.setRecording(true)
            b.setRecording(true)
            try await withBalancer([
                "discovery.redis": "false", "nodes.static": "id=a,host=127.0.0.1,port=\(a.port);id=b,host=127.0.0.1,port=\(b.port)",
                "upstream.tls": "true", "upstream.caFile": certificates.caFile,
            ]) { balancer in
                try await balancer.waitForUsable(2)
                var codes: [String] = []
                for i in 0..<20 { codes.append(try await get("http://127.0.0.1:\(balancer.port)/item/\(i)")) }
                #expect(codes == Array(repeating: "200", count: 20), "\(codes)")
                let served = [a, b].map { backend in backend.seen.filter { $0.uri.hasPrefix("/item/") }.count }
                #expect(served.reduce(0, +) == 20)
                #expect(served.allSatisfy { $0 > 0 }, "both nodes served: \(served)")
                #expect([a, b].allSatisfy { $0.seen.contains { $0.uri == "/__gateway/health" } }, "health checks went over TLS")
            }
        }

        /// `upstream.protocol: h2`: HTTP/2 over TLS (ALPN `h2`) to h2-only nodes, requests multiplexed as
        /// streams over a few connections; a node that does not choose `h2` fails the connect (502, no
        /// request reaches it). Health checks (HTTP/1.1) are off: these backends speak only h2.
        @Test func http2OverTLS() async throws {
            let certificates = try await TestCertificates.make()
            let tls = (certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile)
            let a = try await TestH2Backend.start(name: "a", tls: tls)
            let b = try await TestH2Backend.start(name: "b", tls: tls)
            let http1Only = try await TestHTTPBackend.start(name: "http1", tls: tls)
            defer {
                Task {
                    await a.kill()
                    await b.kill()
                    await http1Only.stop()
                }
            }
            try await withBalancer([
                "discovery.redis": "false", "nodes.static": "id=a,host=127.0.0.1,port=\(a.port);id=b,host=127.0.0.1,port=\(b.port)",
                "upstream.tls": "true", "upstream.protocol": "h2", "upstream.caFile": certificates.caFile, "health.enabled": "false",
            ]) { balancer in
                var codes: [String] = []
                for i in 0..<20 { codes.append(try await get("http://127.0.0.1:\(balancer.port)/item/\(i)")) }
                #expect(codes == Array(repeating: "200", count: 20), "\(codes)")
                #expect(a.streams + b.streams == 20 && a.streams > 0 && b.streams > 0, "streams: \(a.streams) + \(b.streams)")
                let connections = a.acceptedConnections + b.acceptedConnections
                #expect(connections <= 2 * System.coreCount, "\(connections) connections for 20 streams")
            }
            try await withBalancer([
                "discovery.redis": "false", "nodes.static": "id=c,host=127.0.0.1,port=\(http1Only.port)",
                "upstream.tls": "true", "upstream.protocol": "h2", "upstream.caFile": certificates.caFile, "health.enabled": "false",
            ]) { balancer in
                let code = try await get("http://127.0.0.1:\(balancer.port)/item/1")
                #expect(code == "502" || code == "503", "\(code)")
                #expect(http1Only.requestCount == 0)
            }
        }

        /// Nodes whose certificates the configured CA did not sign: their health checks fail, and no
        /// request reaches them (the handshake fails first).
        @Test func untrustedNodes() async throws {
            let certificates = try await TestCertificates.make()
            let a = try await TestHTTPBackend.start(name: "a", tls: (certificates.serverCertFile, certificates.serverKeyFile))
            defer { Task { await a.stop() } }
            try await withBalancer([
                "discovery.redis": "false", "nodes.static": "id=a,host=127.0.0.1,port=\(a.port)",
                "upstream.tls": "true", "upstream.caFile": certificates.otherCAFile, "health.fall": "1",
            ]) { balancer in
                try await waitUntil("the node to fail its TLS health checks", timeout: .seconds(5)) {
                    (try? await balancer.nodes().nodes.first?.health.active) == "unhealthy"
                }
                let code = try await get("http://127.0.0.1:\(balancer.port)/item/1")
                #expect(code == "502" || code == "503", "\(code)")
                #expect(a.requestCount == 0, "no request completed a TLS handshake")
            }
        }
    }
}

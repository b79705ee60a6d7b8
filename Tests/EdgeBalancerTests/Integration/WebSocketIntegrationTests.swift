import Foundation
import GatewayCore
import GatewayTesting
import Testing

@testable import EdgeBalancer

extension IntegrationTests {
    /// WebSocket through the balancer: the node's 101 turns the client's connection and an upstream
    /// connection of its own into one tunnel.
    @Suite struct WebSockets {
        /// Python's `websockets` on both ends, with `upstream.protocol: h2c`: the handshake still goes over
        /// an HTTP/1.1 connection of its own (HTTP/2 streams cannot switch protocols), echoes of text and
        /// a 1 MiB binary message, 20 connections at once and close frames from either side pass through,
        /// and every tunnel is counted closed afterwards.
        @Test(
            .enabled(
                if: WebSocketCheck.available, "python3-websockets is not installed (apt-get install python3-websockets; scripts/test.sh does it)"))
        func websocketRoundTripsThroughTheBalancer() async throws {
            let backendPort = try await LoopbackPort.free()
            try await withBalancer([
                "discovery.redis": "false", "nodes.static": "id=ws,host=127.0.0.1,port=\(backendPort)", "health.enabled": "false",
                "upstream.protocol": "h2c",
            ]) { balancer in
                let run = try await WebSocketCheck.run(backendPort: backendPort, url: "ws://127.0.0.1:\(balancer.port)/socket")
                #expect(run.status == 0 && run.output.hasSuffix("ok\n"), "\(run.output)")
                let lines = run.output.split(separator: "\n").map(String.init)
                #expect(lines.contains("echo ok"), "\(run.output)")
                #expect(lines.contains("concurrent ok"), "\(run.output)")
                #expect(lines.contains("client_close 1000"), "\(run.output)")
                #expect(lines.contains("server_close 4000 bye"), "\(run.output)")
                #expect(lines.contains { $0.hasPrefix("whoami ") && $0.contains(#""path": "/socket""#) }, "\(run.output)")
                try await waitUntil("every tunnel counted closed", timeout: .seconds(5), interval: .milliseconds(10)) {
                    balancer.app.front.openTunnelCount == 0
                }
            }
        }

        /// A balancer shutting down closes its open tunnels at once: its shutdown does not wait for them
        /// (a tunnel has no end of its own), and the client has had the 101 and the backend's bytes.
        @Test func shutdownClosesOpenTunnels() async throws {
            let switching = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nHELLO".utf8)
            let upgrade = Array(
                "GET /socket HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                    .utf8)
            try await withFakeTCPServer(.reply(switching)) { backend in
                let (tunnel, shutdownBegan) = try await withTimeout(.seconds(10), "the balancer's shutdown with a tunnel open") {
                    try await withBalancer([
                        "discovery.redis": "false", "nodes.static": "id=ws,host=127.0.0.1,port=\(backend.port)", "health.enabled": "false",
                    ]) { balancer in
                        let tunnel = Task {
                            // Reads until the balancer closes the connection.
                            try await RawTCP.exchange(port: balancer.port, request: upgrade, timeout: .seconds(20)) { _ in false }
                        }
                        try await waitUntil("the tunnel to open", timeout: .seconds(5), interval: .milliseconds(10)) {
                            balancer.app.front.openTunnelCount == 1
                        }
                        return (tunnel, ContinuousClock.now)
                    }
                }
                let shutdown = ContinuousClock.now - shutdownBegan
                #expect(shutdown < .seconds(3), "\(shutdown)")
                let text = String(decoding: try await tunnel.value, as: UTF8.self)
                #expect(text.hasPrefix("HTTP/1.1 101 ") && text.hasSuffix("HELLO"), "\(text)")
            }
        }
    }
}

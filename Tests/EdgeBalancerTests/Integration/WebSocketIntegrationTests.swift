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
    }
}

import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// WebSocket (an HTTP/1.1 `Upgrade` the backend accepts with 101) through the engine: after the
    /// handshake, which is authenticated like any request, the two connections carry bytes both ways.
    @Suite struct WebSockets {
        /// Python's `websockets` on both ends: echoes of text and a 1 MiB binary message, 20 connections
        /// at once, close frames from either side passed through, the handshake refused without the API's
        /// key, and never answered from the API's cache; each tunnel's end is an access line of its own.
        @Test(
            .enabled(
                if: WebSocketCheck.available, "python3-websockets is not installed (apt-get install python3-websockets; scripts/test.sh does it)"))
        func websocketRoundTripsThroughTheEngine() async throws {
            let logs = InMemoryLogHandler.Store()
            let backendPort = try await LoopbackPort.free()
            try await withEngines(settings: ["log.access": "true"], accessLogs: logs) { cluster in
                try await cluster.putAPI(
                    apiJSON("ws", path: "/ws", targets: [backendPort], extra: #""auth":{"mode":"api_key"},"cache":{"enabled":true}"#))
                let (key, id) = try await cluster.createKey(#"{"name":"sockets"}"#)
                let url = "ws://127.0.0.1:\(cluster.first.port)/ws/chat"
                let run = try await WebSocketCheck.run(backendPort: backendPort, url: url, apiKey: key, refusedURL: url)
                #expect(run.status == 0 && run.output.hasSuffix("ok\n"), "\(run.output)")
                let lines = run.output.split(separator: "\n").map(String.init)
                #expect(lines.contains("echo ok"), "\(run.output)")
                #expect(lines.contains("concurrent ok"), "\(run.output)")
                #expect(lines.contains("client_close 1000"), "the client's close frame reached the backend: \(run.output)")
                #expect(lines.contains("server_close 4000 bye"), "the backend's close frame reached the client: \(run.output)")
                #expect(lines.contains("refused 401"), "\(run.output)")
                let whoami = try #require(lines.first { $0.hasPrefix("whoami ") }, "\(run.output)")
                let seen = try #require(
                    try JSONSerialization.jsonObject(with: Data(whoami.dropFirst(7).utf8)) as? [String: Any], "\(whoami)")
                #expect(seen["path"] as? String == "/ws/chat")
                #expect(seen["xff"] as? String == "127.0.0.1")
                #expect((seen["request_id"] as? String)?.isEmpty == false)

                // The handshake's access line (101, the key's id) and, per tunnel, a line at its end.
                try await waitUntil("the tunnels' access lines", timeout: .seconds(5), interval: .milliseconds(10)) {
                    logs.entries.filter { $0.message == "tunnel closed" }.count >= 22
                }
                let switched = logs.entries.filter { $0.message == "request" && "\($0.metadata["http.status"] ?? "")" == "101" }
                #expect(switched.count == 22, "the first, 20 at once, the one the backend closed")
                #expect(switched.allSatisfy { "\($0.metadata["client"] ?? "")" == "key:\(id)" })
                let closed = logs.entries.filter { $0.message == "tunnel closed" }
                #expect(closed.contains { Int("\($0.metadata["tunnel.bytes_in"] ?? "")") ?? 0 > 1 << 20 }, "the 1 MiB message went in")
                #expect(closed.contains { "\($0.metadata["tunnel.closed_by"] ?? "")" == "backend" })
                #expect(!logs.entries.contains { "\($0.metadata)".contains(key) })
                try await waitUntil("every tunnel counted closed", timeout: .seconds(5), interval: .milliseconds(10)) {
                    cluster.first.engine.front.openTunnelCount == 0
                }
            }
        }

        /// Raw bytes: the engine sends `Connection: upgrade` and `Upgrade` to the backend, relays its 101
        /// with `Upgrade` and the bytes it sent right after the head, and closes a tunnel that carries
        /// nothing for `limits.tunnelIdleTimeout`.
        @Test func tunnelRelaysEarlyBytesAndClosesWhenIdle() async throws {
            let switching = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nHELLO".utf8)
            try await withFakeTCPServer(.reply(switching)) { backend in
                try await withEngines(settings: ["limits.tunnelIdleTimeout": "300ms"]) { cluster in
                    try await cluster.putAPI(apiJSON("raw", path: "/raw", targets: [backend.port]))
                    let request = Array(
                        "GET /raw/socket HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                            .utf8)
                    let started = ContinuousClock.now
                    // Read until the engine closes the connection (the idle tunnel's end).
                    let bytes = try await RawTCP.exchange(port: cluster.first.port, request: request, timeout: .seconds(10)) { _ in false }
                    let elapsed = ContinuousClock.now - started
                    let text = String(decoding: bytes, as: UTF8.self)
                    #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), "\(text)")
                    #expect(text.contains("\r\nUpgrade: websocket\r\n") && text.lowercased().contains("\r\nconnection: upgrade\r\n"), "\(text)")
                    #expect(text.hasSuffix("\r\n\r\nHELLO"), "\(text)")
                    #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(8), "\(elapsed)")
                    let sent = String(decoding: backend.receivedBytes, as: UTF8.self).lowercased()
                    #expect(sent.contains("\r\nconnection: upgrade\r\n") && sent.contains("\r\nupgrade: websocket\r\n"), "\(sent)")
                    #expect(sent.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="))
                }
            }
        }

        /// A backend answering 101 to a request that asked for no protocol switch is not speaking HTTP
        /// any more: 502, and the client's connection is not turned into a tunnel.
        @Test func unsolicitedSwitchingProtocolsIsABadGateway() async throws {
            let switching = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8)
            try await withFakeTCPServer(.reply(switching)) { backend in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("raw", path: "/raw", targets: [backend.port]))
                    let response = try await cluster.first.send(.GET, "/raw/plain")
                    #expect(response.status == 502, "\(response)")
                    #expect(response.string("request_id") != nil)
                }
            }
        }
    }
}

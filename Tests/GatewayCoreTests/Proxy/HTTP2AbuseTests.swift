import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Testing

/// Forwards everything to one backend.
private struct ForwardAll: ProxyRouter {
    var target: UpstreamTarget

    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult {
        .decided(.forward(ForwardPlan(target: target, head: request.head)))
    }

    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount) {}
}

@Suite struct HTTP2AbuseTests {

    private func withFront(
        bodyReadTimeout: TimeAmount = .seconds(30), backendDelay: TimeAmount? = nil, backend setUp: (TestHTTPBackend) -> Void = { _ in },
        _ body: @escaping @Sendable (Int) async throws -> Void
    ) async throws {
        let backend = try await TestHTTPBackend.start(name: "b")
        if let backendDelay { backend.setDelay(backendDelay) }
        setUp(backend)
        let pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton)
        var limits = ProxyLimits()
        limits.maxHeaderBytes = 4096
        limits.bodyReadTimeout = bodyReadTimeout
        let server = HTTPFrontServer(
            configuration: .init(host: "127.0.0.1", port: 0, limits: limits),
            router: ForwardAll(target: .init(host: "127.0.0.1", port: backend.port)), pools: pools, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningAddress.port!
            defer { group.cancelAll() }
            try await body(port)
        }
        pools.closeAll()
        await backend.stop()
    }

    /// Bytes after the preface that are not a valid frame sequence get a GOAWAY and a closed connection,
    /// while other connections keep being served.
    @Test func malformedFramesCloseOnlyThatConnection() async throws {
        try await withFront { port in
            // SETTINGS with a length that is not a multiple of 6: a FRAME_SIZE_ERROR for the connection.
            let bad = HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4, payload: [0, 0, 0]) + Array(repeating: 0xff, count: 64)
            let reply = try await RawTCP.exchange(port: port, request: bad, timeout: .seconds(5)) { _ in false }
            // The server answered with frames (its SETTINGS and a GOAWAY, type 0x7) and then closed.
            #expect(reply.count >= 9)
            #expect(HTTP2Wire.frames(in: reply).contains { $0.type == 0x7 })
            let ok = try await runCurl(["--http2-prior-knowledge", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/after"])
            #expect(ok.output == "200")
        }
    }

    /// A header block past the advertised header list size fails that request without taking down the
    /// connection's other streams or the server.
    @Test func oversizedHeadersAreRefused() async throws {
        try await withFront { port in
            let big = String(repeating: "x", count: 16_000)
            let code = try await runCurl([
                "--http2-prior-knowledge", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: \(big)", "http://127.0.0.1:\(port)/big",
            ])
            #expect(code.output != "200")
            let ok = try await runCurl(["--http2-prior-knowledge", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/fine"])
            #expect(ok.output == "200")
        }
    }

    /// A stream whose request body stops (HEADERS without END_STREAM, one DATA frame, then nothing) gets a
    /// 408 once `bodyReadTimeout` (300 ms) passes and is then reset; the connection stays usable.
    @Test func stalledRequestBodyGets408() async throws {
        try await withFront(bodyReadTimeout: .milliseconds(300)) { port in
            // POST / on stream 1 (:method POST, :scheme http, :path / from HPACK's static table), END_HEADERS only.
            let request =
                HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4) + HTTP2Wire.frame(type: 0x1, flags: 0x4, stream: 1, payload: [0x83, 0x86, 0x84])
                + HTTP2Wire.frame(type: 0x0, stream: 1, payload: Array("start".utf8))
            let start = ContinuousClock.now
            let reply = try await RawTCP.exchange(port: port, request: request, timeout: .seconds(5)) { bytes in
                HTTP2Wire.frames(in: bytes).contains { $0.type == 0x3 && $0.stream == 1 }
            }
            let elapsed = ContinuousClock.now - start
            let frames = HTTP2Wire.frames(in: reply)
            let answer = try #require(frames.firstIndex { $0.type == 0x1 && $0.stream == 1 }, "no response HEADERS in \(frames)")
            var block = ByteBuffer(bytes: frames[answer].payload)
            var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
            let headers = try decoder.decodeHeaders(from: &block)
            #expect(headers.first(name: ":status") == "408", "\(headers)")
            #expect(headers.first(name: "x-request-id") != nil)
            let body = frames.filter { $0.type == 0x0 && $0.stream == 1 }.flatMap(\.payload)
            #expect(String(decoding: body, as: UTF8.self).contains("request body stalled"), "\(frames)")
            #expect(frames.contains { $0.type == 0x3 && $0.stream == 1 })
            #expect(elapsed >= .milliseconds(280) && elapsed < .seconds(2), "answered after \(elapsed)")
            let ok = try await runCurl(["--http2-prior-knowledge", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/after"])
            #expect(ok.output == "200")
        }
    }

    /// Graceful shutdown with a request in flight on an HTTP/2 connection: the client gets GOAWAY at once,
    /// the stream in flight still gets its whole answer, and then the connection closes.
    @Test func gracefulShutdownSendsGoAwayAndFinishesTheStream() async throws {
        let backend = try await TestHTTPBackend.start(name: "b")
        backend.setDelay(.seconds(2))  // the GOAWAY must come first even when a busy machine is slow to shut down
        let pools = UpstreamPools(group: MultiThreadedEventLoopGroup.singleton)
        let logger = Logger(label: "test")
        let server = HTTPFrontServer(
            configuration: .init(host: "127.0.0.1", port: 0),
            router: ForwardAll(target: .init(host: "127.0.0.1", port: backend.port)), pools: pools, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = try await server.listeningAddress.port!
            // GET / on stream 1: :method GET, :scheme http, :path / from HPACK's static table.
            let request =
                HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4) + HTTP2Wire.frame(type: 0x1, flags: 0x5, stream: 1, payload: [0x82, 0x86, 0x84])
            async let reply = RawTCP.exchange(port: port, request: request, timeout: .seconds(10)) { _ in false }
            try await waitUntil("the request to reach the backend") { backend.requestCount == 1 }
            await group.triggerGracefulShutdown()
            let frames = HTTP2Wire.frames(in: try await reply)
            let goAway = try #require(frames.firstIndex { $0.type == 0x7 }, "no GOAWAY in \(frames)")
            let answer = try #require(frames.firstIndex { $0.type == 0x1 && $0.stream == 1 }, "no response HEADERS in \(frames)")
            #expect(goAway < answer, "GOAWAY came only after the response: \(frames)")
            #expect(frames[answer].payload.first == 0x88, "not :status 200: \(frames[answer])")
            #expect(
                frames.contains { $0.stream == 1 && ($0.type == 0x0 || $0.type == 0x1) && $0.flags & 0x1 != 0 }, "stream 1 never ended: \(frames)")
            try await tasks.next()
        }
        pools.closeAll()
        await backend.stop()
    }

    /// Rapid reset (CVE-2023-44487): a client that opens streams and resets them at once, past 200 resets
    /// in 10 s, gets GOAWAY(ENHANCE_YOUR_CALM) and a closed connection; other clients are still served.
    @Test func rapidResetFloodEndsTheConnection() async throws {
        try await withFront { port in
            var flood = HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4)
            for n in 0..<300 {
                let stream = UInt32(2 * n + 1)
                flood += HTTP2Wire.frame(type: 0x1, flags: 0x5, stream: stream, payload: [0x82, 0x86, 0x84])
                flood += HTTP2Wire.frame(type: 0x3, stream: stream, payload: [0, 0, 0, 0x8])  // CANCEL
            }
            let reply = HTTP2Wire.frames(in: try await RawTCP.exchange(port: port, request: flood, timeout: .seconds(10)) { _ in false })
            let goAway = try #require(reply.first { $0.type == 0x7 }, "no GOAWAY in \(reply.count) frames")
            #expect(Array(goAway.payload.suffix(4)) == [0, 0, 0, 0xb], "not ENHANCE_YOUR_CALM: \(goAway.payload)")
            let ok = try await runCurl(["--http2-prior-knowledge", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/after"])
            #expect(ok.output == "200")
        }
    }

    /// A request body longer than its `content-length` resets the stream (PROTOCOL_ERROR) instead of
    /// reaching the backend, whose connection would read the excess as a request of its own.
    @Test func bodyPastItsContentLengthResetsTheStream() async throws {
        try await withFront { port in
            // POST / with content-length: 3 (a literal with the static table's name 28), then 5 bytes.
            let block: [UInt8] = [0x83, 0x86, 0x84, 0x0f, 0x0d, 0x01, UInt8(ascii: "3")]
            let request =
                HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4) + HTTP2Wire.frame(type: 0x1, flags: 0x4, stream: 1, payload: block)
                + HTTP2Wire.frame(type: 0x0, flags: 0x1, stream: 1, payload: Array("hello".utf8))
            let reply = HTTP2Wire.frames(
                in: try await RawTCP.exchange(port: port, request: request, timeout: .seconds(5)) { bytes in
                    HTTP2Wire.frames(in: bytes).contains { $0.type == 0x3 && $0.stream == 1 }
                })
            let reset = try #require(reply.first { $0.type == 0x3 && $0.stream == 1 }, "\(reply)")
            #expect(reset.payload == [0, 0, 0, 0x1], "not PROTOCOL_ERROR: \(reset.payload)")
            #expect(!reply.contains { $0.type == 0x7 }, "the connection was ended: \(reply)")
        }
    }

    /// A request whose header block continues in a CONTINUATION frame is answered, and a PING on the same
    /// connection is acknowledged with its payload.
    @Test func continuedHeaderBlockAndPingAreAnswered() async throws {
        try await withFront { port in
            let ping: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
            let request =
                HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4) + HTTP2Wire.frame(type: 0x6, payload: ping)
                + HTTP2Wire.frame(type: 0x1, flags: 0x1, stream: 1, payload: [0x82, 0x86])
                + HTTP2Wire.frame(type: 0x9, flags: 0x4, stream: 1, payload: [0x84])
            let reply = HTTP2Wire.frames(
                in: try await RawTCP.exchange(port: port, request: request, timeout: .seconds(5)) { bytes in
                    HTTP2Wire.frames(in: bytes).contains { $0.stream == 1 && $0.flags & 0x1 != 0 && ($0.type == 0x0 || $0.type == 0x1) }
                })
            #expect(reply.contains { $0.type == 0x6 && $0.flags == 0x1 && $0.payload == ping }, "no PING ACK: \(reply)")
            let answer = try #require(reply.first { $0.type == 0x1 && $0.stream == 1 }, "\(reply)")
            #expect(answer.payload.first == 0x88, "not :status 200: \(answer)")
        }
    }

    /// Past the 100 concurrent streams the server announces, a new stream is refused (REFUSED_STREAM,
    /// which tells the client it may retry it) while the 100 in flight are all answered.
    @Test func streamsPastTheConcurrencyLimitAreRefused() async throws {
        try await withFront(backendDelay: .milliseconds(500)) { port in
            var request = HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4)
            for n in 0..<101 {
                request += HTTP2Wire.frame(type: 0x1, flags: 0x5, stream: UInt32(2 * n + 1), payload: [0x82, 0x86, 0x84])
            }
            let reply = HTTP2Wire.frames(
                in: try await RawTCP.exchange(port: port, request: request, timeout: .seconds(10)) { bytes in
                    HTTP2Wire.frames(in: bytes).filter { $0.type == 0x1 }.count >= 100
                })
            let refused = reply.filter { $0.type == 0x3 }
            #expect(refused.map(\.stream) == [201] && refused.first?.payload == [0, 0, 0, 0x7], "\(refused)")
            let answered: Set<UInt32> = Set(reply.filter { $0.type == 0x1 && $0.payload.first == 0x88 }.map(\.stream))
            let accepted: Set<UInt32> = Set((0..<100).map { (n: Int) -> UInt32 in UInt32(2 * n + 1) })
            #expect(answered == accepted)
        }
    }

    /// A WINDOW_UPDATE that takes the connection's send window past 2^31-1 is a FLOW_CONTROL_ERROR for the
    /// connection (RFC 9113 §6.9.1).
    @Test func windowOverflowEndsTheConnection() async throws {
        try await withFront { port in
            let request = HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4) + HTTP2Wire.frame(type: 0x8, payload: [0x7f, 0xff, 0xff, 0xff])
            let reply = HTTP2Wire.frames(in: try await RawTCP.exchange(port: port, request: request, timeout: .seconds(5)) { _ in false })
            let goAway = try #require(reply.first { $0.type == 0x7 }, "\(reply)")
            #expect(Array(goAway.payload.suffix(4)) == [0, 0, 0, 0x3], "not FLOW_CONTROL_ERROR: \(goAway.payload)")
        }
    }

    /// Python's `h2` (an independent HTTP/2 implementation) as the client, over a real socket: a download
    /// through a 1,000-byte stream window; one that starts at a window of 0 and is opened by a SETTINGS
    /// change mid-stream (the server applies the difference to the open stream, after acknowledging);
    /// a stream reset by the client while its DATA waits for window, then another served whole; larger
    /// frames and windows announced by the client; 20 concurrent streams beside a PING; and an upload in
    /// padded DATA frames ended by trailers.
    @Test(.enabled(if: Self.pythonH2Available, "python3-h2 is not installed (apt-get install python3-h2; scripts/test.sh does it)"))
    func pythonH2ClientScenarios() async throws {
        let big = 200_000
        try await withFront(backend: { backend in
            backend.setFixedBody(ByteBuffer(repeating: UInt8(ascii: "b"), count: big))
        }) { port in
            let download = try await runTool("/usr/bin/python3", ["-c", Self.h2Client, String(port), "download", String(big)], timeout: .seconds(30))
            #expect(download.status == 0 && download.output.hasSuffix("ok\n"), "\(download.output)")
        }
        try await withFront { port in
            let upload = try await runTool("/usr/bin/python3", ["-c", Self.h2Client, String(port), "upload", "5000"], timeout: .seconds(30))
            #expect(upload.status == 0 && upload.output.hasSuffix("ok\n"), "\(upload.output)")
        }
    }

    static let pythonH2Available = systemPythonHas(module: "h2")

    private static let h2Client = #"""
        import socket, sys
        import h2.config, h2.connection, h2.events, h2.settings

        port, mode, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

        def connect(initial_window=None):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
            if initial_window is not None:
                conn.local_settings = h2.settings.Settings(
                    client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
            conn.initiate_connection()
            sock.sendall(conn.data_to_send())
            return sock, conn

        def pump(sock, conn, state, done):
            while not done(state):
                data = sock.recv(65536)
                if not data:
                    raise SystemExit("connection closed early: %r" % state)
                for event in conn.receive_data(data):
                    sid = getattr(event, "stream_id", None)
                    if isinstance(event, h2.events.ResponseReceived):
                        state.setdefault(sid, {})["status"] = dict(event.headers)[":status"]
                    elif isinstance(event, h2.events.DataReceived):
                        state.setdefault(sid, {}).setdefault("body", bytearray()).extend(event.data)
                        state["largest"] = max(state.get("largest", 0), event.flow_controlled_length)
                        conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    elif isinstance(event, h2.events.StreamEnded):
                        state.setdefault(sid, {})["ended"] = True
                    elif isinstance(event, h2.events.StreamReset) and not event.remote_reset:
                        pass  # the client's own reset
                    elif isinstance(event, h2.events.StreamReset):
                        raise SystemExit("stream %d reset: %r" % (sid, event.error_code))
                    elif isinstance(event, h2.events.PingAckReceived):
                        state["ping"] = event.ping_data
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        raise SystemExit("GOAWAY: %r" % event.error_code)
                sock.sendall(conn.data_to_send())

        def get(conn, sid, path):
            conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "127.0.0.1")],
                              end_stream=True)

        def check(state, sid, length):
            stream = state[sid]
            assert stream.get("status") == "200", stream.get("status")
            assert len(stream.get("body", b"")) == length, (sid, len(stream.get("body", b"")))
            assert stream.get("ended"), sid

        if mode == "download":
            # A stream window of 1,000 bytes: the body comes in many pieces, each after a WINDOW_UPDATE.
            sock, conn = connect(initial_window=1000)
            get(conn, 1, "/small-window")
            sock.sendall(conn.data_to_send())
            state = {}
            pump(sock, conn, state, lambda s: s.get(1, {}).get("ended"))
            check(state, 1, size)
            sock.close()

            # A stream window of 0: only the headers come until SETTINGS opens every stream's window.
            sock, conn = connect(initial_window=0)
            get(conn, 1, "/zero-window")
            sock.sendall(conn.data_to_send())
            state = {}
            pump(sock, conn, state, lambda s: "status" in s.get(1, {}))
            assert not state[1].get("body"), "DATA past a window of 0"
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
            sock.sendall(conn.data_to_send())
            pump(sock, conn, state, lambda s: s.get(1, {}).get("ended"))
            check(state, 1, size)
            sock.close()

            # A stream reset by the client while its DATA waits for window; the next stream is served whole.
            sock, conn = connect(initial_window=1000)
            get(conn, 1, "/reset-me")
            sock.sendall(conn.data_to_send())
            state = {}
            pump(sock, conn, state, lambda s: len(s.get(1, {}).get("body", b"")) > 0)
            conn.reset_stream(1)
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
            get(conn, 3, "/after-reset")
            sock.sendall(conn.data_to_send())
            pump(sock, conn, state, lambda s: s.get(3, {}).get("ended"))
            check(state, 3, size)
            sock.close()

            # Frames of up to 64 KiB and windows of 1 MiB announced by the client: DATA comes in larger frames.
            sock, conn = connect()
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20, h2.settings.SettingCodes.MAX_FRAME_SIZE: 65536})
            conn.increment_flow_control_window((1 << 20) - 65535)
            get(conn, 1, "/large-frames")
            sock.sendall(conn.data_to_send())
            state = {}
            pump(sock, conn, state, lambda s: s.get(1, {}).get("ended"))
            check(state, 1, size)
            assert state["largest"] > 16384, state["largest"]
            sock.close()

            # 20 streams at once beside a PING.
            sock, conn = connect()
            for n in range(20):
                get(conn, 2 * n + 1, "/many/%d" % n)
            conn.ping(b"12345678")
            sock.sendall(conn.data_to_send())
            state = {}
            pump(sock, conn, state, lambda s: "ping" in s and all(s.get(2 * n + 1, {}).get("ended") for n in range(20)))
            assert state["ping"] == b"12345678"
            for n in range(20):
                check(state, 2 * n + 1, size)
            sock.close()
        else:
            # An upload in padded DATA frames, ended by trailers.
            sock, conn = connect()
            conn.send_headers(1, [(":method", "POST"), (":path", "/upload"), (":scheme", "http"), (":authority", "127.0.0.1"),
                                  ("content-type", "application/octet-stream")])
            for _ in range(size // 1000):
                conn.send_data(1, b"u" * 1000, pad_length=17)
            conn.send_headers(1, [("x-checksum", "none")], end_stream=True)
            sock.sendall(conn.data_to_send())
            state = {}
            pump(sock, conn, state, lambda s: s.get(1, {}).get("ended"))
            assert state[1].get("status") == "200", state[1]
            assert b'"body_bytes":%d' % size in state[1].get("body", b""), bytes(state[1].get("body", b""))
            sock.close()
        print("ok")
        """#
}

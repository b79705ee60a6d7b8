import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// A real h2c backend (HTTP/2 with prior knowledge, no TLS) on 127.0.0.1 for upstream HTTP/2 tests, or
/// with `tls` an h2 backend (HTTP/2 over TLS, ALPN `h2` only).
///
/// Every stream is answered `200` after an optional delay: a request with a body gets the body back
/// (echoed as it was received), one without gets the backend's name. Response headers tell what the
/// backend saw: `x-backend`, `x-seen-host` (the `:authority`, as the HTTP/1 view's `Host`),
/// `x-seen-connection-headers` (connection-specific headers in the HEADERS frame on the wire, `none` if
/// none; read before the HTTP/1 view, which adds `transfer-encoding` itself). It counts
/// accepted TCP connections and streams, and can be killed (listener and connections closed at once).
public final class TestH2Backend: Sendable {
    fileprivate struct State {
        var delay: TimeAmount = .zero
        var acceptedConnections = 0
        var streams = 0
        var activeStreams = 0
        var peakActiveStreams = 0
        var open: [ObjectIdentifier: any Channel] = [:]
    }

    public let name: String
    public let port: Int
    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    private init(name: String, channel: any Channel, state: NIOLockedValueBox<State>) {
        self.name = name
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.state = state
    }

    /// Starts a backend on a free loopback port (or `port`, to stand in for one that was killed); with
    /// `tls` (PEM certificate and key files), over TLS.
    public static func start(
        name: String, port: Int = 0, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        tls: (certFile: String, keyFile: String)? = nil
    ) async throws -> TestH2Backend {
        let tlsContext = try tls.map { files in
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(files.certFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: files.keyFile, format: .pem)))
            configuration.applicationProtocols = ["h2"]
            return try NIOSSLContext(configuration: configuration)
        }
        let state = NIOLockedValueBox(State())
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                state.withLockedValue {
                    $0.acceptedConnections += 1
                    $0.open[id] = channel
                }
                channel.closeFuture.whenComplete { _ in _ = state.withLockedValue { $0.open.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    if let tlsContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext)) }
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            let wire = WireHeaders()
                            try stream.pipeline.syncOperations.addHandlers([
                                WireHeaderRecorder(wire: wire),
                                HTTP2FramePayloadToHTTP1ServerCodec(),
                                H2EchoHandler(name: name, state: state, wire: wire),
                            ])
                        }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return TestH2Backend(name: name, channel: channel, state: state)
    }

    /// TCP connections accepted so far.
    public var acceptedConnections: Int { state.withLockedValue { $0.acceptedConnections } }
    /// Streams (requests) received so far.
    public var streams: Int { state.withLockedValue { $0.streams } }
    /// The most streams in progress at once.
    public var peakActiveStreams: Int { state.withLockedValue { $0.peakActiveStreams } }
    public func setDelay(_ delay: TimeAmount) { state.withLockedValue { $0.delay = delay } }

    /// Closes the listener and every connection at once, as a crashed process's would be.
    public func kill() async {
        try? await channel.close()
        for channel in state.withLockedValue({ Array($0.open.values) }) {
            try? await channel.close()
        }
    }
}

/// The header names of a stream's first HEADERS frame, as they came over the wire.
private final class WireHeaders {
    var names: [String] = []
}

private final class WireHeaderRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload

    private let wire: WireHeaders

    init(wire: WireHeaders) {
        self.wire = wire
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .headers(let headers) = unwrapInboundIn(data), wire.names.isEmpty {
            wire.names = headers.headers.map { $0.name.lowercased() }
        }
        context.fireChannelRead(data)
    }
}

private final class H2EchoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let name: String
    private let state: NIOLockedValueBox<TestH2Backend.State>
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private let wire: WireHeaders

    init(name: String, state: NIOLockedValueBox<TestH2Backend.State>, wire: WireHeaders) {
        self.name = name
        self.state = state
        self.wire = wire
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            state.withLockedValue {
                $0.streams += 1
                $0.activeStreams += 1
                $0.peakActiveStreams = max($0.peakActiveStreams, $0.activeStreams)
            }
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            let delay = state.withLockedValue { $0.delay }
            let connectionHeaders = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]
                .filter { wire.names.contains($0) }
            var headers = HTTPHeaders()
            headers.add(name: "x-backend", value: name)
            headers.add(name: "x-seen-host", value: head.headers.first(name: "host") ?? "none")
            headers.add(name: "x-seen-connection-headers", value: connectionHeaders.isEmpty ? "none" : connectionHeaders.joined(separator: ","))
            let payload = body.readableBytes > 0 ? body : ByteBuffer(string: name)
            headers.add(name: "content-length", value: String(payload.readableBytes))
            let respond = { [self] in
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                state.withLockedValue { $0.activeStreams -= 1 }
            }
            if delay > .zero {
                context.eventLoop.assumeIsolated().scheduleTask(in: delay) { respond() }
            } else {
                respond()
            }
        }
    }
}

@available(*, unavailable)
extension H2EchoHandler: Sendable {}

@available(*, unavailable)
extension WireHeaderRecorder: Sendable {}

@available(*, unavailable)
extension WireHeaders: Sendable {}

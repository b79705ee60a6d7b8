import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A real HTTP/1.1 backend on 127.0.0.1 for proxy tests: answers every request with its own name, after
/// an optional delay, and remembers what it was asked.
///
/// Responses are JSON: `{"backend": name, "method": …, "uri": …, "headers": {…}, "body_bytes": n}`,
/// or the bytes set with ``setFixedBody(_:)``. The status can be forced (``setStatus(_:)``), and
/// ``setDelay(_:)`` holds every response back (to simulate distance or a slow backend).
public final class TestHTTPBackend: Sendable {
    public struct Seen: Sendable {
        public var method: HTTPMethod
        public var uri: String
        public var headers: HTTPHeaders
        public var body: ByteBuffer
    }

    fileprivate struct Settings {
        var delay: TimeAmount = .zero
        var status: HTTPResponseStatus = .ok
        var fixedBody: ByteBuffer?
        var extraHeaders: HTTPHeaders = [:]
        var keepSeen = true
    }

    public let name: String
    public let port: Int
    private let channel: any Channel
    private let settings: NIOLockedValueBox<Settings>
    private let seenBox: NIOLockedValueBox<[Seen]>
    private let countBox: NIOLockedValueBox<Int>
    private let connectionsBox: NIOLockedValueBox<ConnectionCounts>

    /// Connections accepted, open now, and the most open at once.
    public struct ConnectionCounts: Sendable {
        public var accepted = 0
        public var open = 0
        public var peakOpen = 0
    }

    private init(
        name: String, channel: any Channel, settings: NIOLockedValueBox<Settings>, seen: NIOLockedValueBox<[Seen]>, count: NIOLockedValueBox<Int>,
        connections: NIOLockedValueBox<ConnectionCounts>
    ) {
        self.name = name
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.settings = settings
        self.seenBox = seen
        self.countBox = count
        self.connectionsBox = connections
    }

    /// Starts a backend on a free loopback port (or `port`). With `tls`, it speaks HTTPS with that
    /// certificate and key (`(certFile, keyFile)`, PEM); with `clientCAFile` as well, it requires a
    /// client certificate that CA signed (mutual TLS).
    public static func start(
        name: String, port: Int = 0, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        tls: (certFile: String, keyFile: String)? = nil, clientCAFile: String? = nil
    ) async throws -> TestHTTPBackend {
        let tlsContext = try tls.map { files in
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(files.certFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: files.keyFile, format: .pem)))
            if let clientCAFile {
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAFile))
            }
            return try NIOSSLContext(configuration: configuration)
        }
        let settings = NIOLockedValueBox(Settings())
        let seen = NIOLockedValueBox<[Seen]>([])
        let count = NIOLockedValueBox(0)
        let connections = NIOLockedValueBox(ConnectionCounts())
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue {
                    $0.accepted += 1
                    $0.open += 1
                    $0.peakOpen = max($0.peakOpen, $0.open)
                }
                channel.closeFuture.whenComplete { _ in connections.withLockedValue { $0.open -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    if let tlsContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        BackendHandler(name: name, settings: settings, seen: seen, count: count))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return TestHTTPBackend(name: name, channel: channel, settings: settings, seen: seen, count: count, connections: connections)
    }

    /// Requests answered (or being answered) so far.
    public var requestCount: Int { countBox.withLockedValue { $0 } }
    public var seen: [Seen] { seenBox.withLockedValue { $0 } }
    public var connections: ConnectionCounts { connectionsBox.withLockedValue { $0 } }
    public func setDelay(_ delay: TimeAmount) { settings.withLockedValue { $0.delay = delay } }
    public func setStatus(_ status: HTTPResponseStatus) { settings.withLockedValue { $0.status = status } }
    public func setFixedBody(_ body: ByteBuffer?) { settings.withLockedValue { $0.fixedBody = body } }
    public func setResponseHeader(_ name: String, _ value: String) {
        settings.withLockedValue { $0.extraHeaders.replaceOrAdd(name: name, value: value) }
    }
    public func setRecording(_ on: Bool) { settings.withLockedValue { $0.keepSeen = on } }
    public func resetCounts() {
        countBox.withLockedValue { $0 = 0 }
        seenBox.withLockedValue { $0 = [] }
    }

    public func stop() async {
        try? await channel.close()
    }
}

private final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let name: String
    private let settings: NIOLockedValueBox<TestHTTPBackend.Settings>
    private let seen: NIOLockedValueBox<[TestHTTPBackend.Seen]>
    private let count: NIOLockedValueBox<Int>
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(
        name: String, settings: NIOLockedValueBox<TestHTTPBackend.Settings>, seen: NIOLockedValueBox<[TestHTTPBackend.Seen]>,
        count: NIOLockedValueBox<Int>
    ) {
        self.name = name
        self.settings = settings
        self.seen = seen
        self.count = count
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            count.withLockedValue { $0 += 1 }
            let s = settings.withLockedValue { $0 }
            if s.keepSeen {
                let entry = TestHTTPBackend.Seen(method: head.method, uri: head.uri, headers: head.headers, body: body)
                seen.withLockedValue { $0.append(entry) }
            }
            var payload: ByteBuffer
            if let fixed = s.fixedBody {
                payload = fixed
            } else {
                var headerJSON = "{"
                var first = true
                for (n, v) in head.headers {
                    headerJSON += (first ? "" : ",") + "\"\(n.lowercased())\":\"\(v.replacingOccurrences(of: "\"", with: "'"))\""
                    first = false
                }
                headerJSON += "}"
                payload = ByteBuffer(
                    string:
                        "{\"backend\":\"\(name)\",\"method\":\"\(head.method)\",\"uri\":\"\(head.uri)\",\"headers\":\(headerJSON),\"body_bytes\":\(body.readableBytes)}"
                )
            }
            var headers = s.extraHeaders
            headers.replaceOrAdd(name: "Content-Length", value: String(payload.readableBytes))
            headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            headers.replaceOrAdd(name: "X-Backend", value: name)
            let response = HTTPResponseHead(version: head.version, status: s.status, headers: headers)
            let keepAlive = head.isKeepAlive
            let send: () -> Void = { [self] in
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil) }
                let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
            }
            if s.delay > .zero {
                context.eventLoop.assumeIsolated().scheduleTask(in: s.delay) { send() }
            } else {
                send()
            }
            self.head = nil
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b)
    }
}

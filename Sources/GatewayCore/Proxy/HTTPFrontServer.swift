import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import ServiceLifecycle
import Synchronization

/// The client-facing listener of the engine and the balancer: HTTP/1.1 and h2c (HTTP/2 with prior
/// knowledge) on one port, told apart by the HTTP/2 connection preface, both served by
/// ``ProxyStream`` with the application's ``ProxyRouter``.
///
/// On graceful shutdown it stops accepting, closes idle connections, lets requests in progress finish,
/// and returns when the last connection has closed.
public final class HTTPFrontServer: Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var limits: ProxyLimits
        public var scheme: String = "http"
        /// When set, the listener speaks TLS and picks HTTP/2 or HTTP/1.1 by ALPN; the scheme is `https`.
        public var tls: TLSContextBox?
        /// Proxies in front whose `X-Forwarded-Proto`/`-Host` are kept (`listen.trustedProxies`).
        public var trustedProxies = AddressRanges()
        /// With ``tls``: counts the handshakes that fail (`<prefix>_tls_handshake_failures_total`).
        public var tlsHandshakeFailures: Counter?

        public init(host: String, port: Int, limits: ProxyLimits = ProxyLimits()) {
            self.host = host
            self.port = port
            self.limits = limits
        }
    }

    private let configuration: Configuration
    private let router: any ProxyRouter
    private let pools: UpstreamPools
    private let group: any EventLoopGroup
    private let logger: Logger
    private let bound: EventLoopPromise<SocketAddress>
    private let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let counters = FrontCounters()

    public init(
        configuration: Configuration, router: any ProxyRouter, pools: UpstreamPools,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.configuration = configuration
        self.router = router
        self.pools = pools
        self.group = group
        self.logger = logger
        self.bound = group.any().makePromise()
    }

    /// The address the server listens on, once it does.
    public var listeningAddress: SocketAddress {
        get async throws { try await bound.futureResult.get() }
    }

    /// Open client connections.
    public var connectionCount: Int { connections.withLockedValue { $0.count } }

    /// Open HTTP/2 streams over all client connections.
    public var activeStreamCount: Int { counters.streams.load(ordering: .relaxed) }

    /// Open tunnels: client connections switched to another protocol (WebSocket) by their backend.
    public var openTunnelCount: Int { counters.tunnels.load(ordering: .relaxed) }

    public func run() async throws {
        let limits = configuration.limits
        let tls = configuration.tls
        let handshakeFailures = configuration.tlsHandshakeFailures
        let handlerConfiguration = ProxyStreamConfiguration(
            router: router, pools: pools, limits: limits, scheme: tls == nil ? configuration.scheme : "https", isHTTP2: false,
            counters: counters, trustedProxies: configuration.trustedProxies, logger: logger)
        let connections = self.connections
        let serverChannel: any Channel
        do {
            serverChannel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 1024)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    let id = ObjectIdentifier(channel)
                    let admitted = connections.withLockedValue { open -> Bool in
                        guard open.count < limits.maxConnections else { return false }
                        open[id] = channel
                        return true
                    }
                    guard admitted else { return channel.close() }
                    channel.closeFuture.whenComplete { _ in
                        _ = connections.withLockedValue { $0.removeValue(forKey: id) }
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try FrontPipeline.configureTLS(
                                channel: channel, context: tls.current, limits: limits, configuration: handlerConfiguration,
                                handshakeFailures: handshakeFailures)
                        } else {
                            try channel.pipeline.syncOperations.addHandler(
                                ProtocolSniffer(limits: limits, configuration: handlerConfiguration))
                        }
                    }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            bound.fail(error)
            throw AdminServerError.bindFailed(address: "\(configuration.host):\(configuration.port)", reason: "\(error)")
        }
        if let address = serverChannel.localAddress { bound.succeed(address) }
        logger.info("listening", metadata: ["listen.address": "\(configuration.host):\(serverChannel.localAddress?.port ?? configuration.port)"])

        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await serverChannel.closeFuture.get()
            } onGracefulShutdown: {
                serverChannel.close(promise: nil)
            }
        } onCancel: {
            serverChannel.close(promise: nil)
        }
        // Stop accepting happened; now let open connections finish their requests.
        drainConnections()
        while connectionCount > 0 && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if Task.isCancelled {
            for channel in connections.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
        }
    }

    private func drainConnections() {
        for channel in connections.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(FrontServerEvent.drain)
        }
    }
}

/// Reads the first bytes of a connection: the HTTP/2 preface selects h2c, anything else HTTP/1.1.
/// Then it installs that protocol's handlers behind itself, replays what it read, and leaves.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var buffered: ByteBuffer?
    private let limits: ProxyLimits
    private let configuration: ProxyStreamConfiguration

    init(limits: ProxyLimits, configuration: ProxyStreamConfiguration) {
        self.limits = limits
        self.configuration = configuration
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        if buffered == nil {
            buffered = chunk
        } else {
            buffered!.writeBuffer(&chunk)
        }
        let bytes = buffered!.readableBytesView
        let preface = HTTP2ServerCodec.preface
        let n = min(bytes.count, preface.count)
        let isPrefix = bytes.prefix(n).elementsEqual(preface.prefix(n))
        if isPrefix && n < preface.count { return }  // need more bytes to decide
        do {
            if isPrefix {
                try configureHTTP2(context: context)
            } else {
                try configureHTTP1(context: context)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        let replay = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(replay))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func configureHTTP1(context: ChannelHandlerContext) throws {
        try FrontPipeline.configureHTTP1(context.pipeline.syncOperations, position: .after(self), limits: limits, configuration: configuration)
    }

    private func configureHTTP2(context: ChannelHandlerContext) throws {
        try context.pipeline.syncOperations.addHandlers(
            [IdleStateHandler(readTimeout: limits.idleTimeout), CloseOnIdleHandler()], position: .after(self))
        try FrontPipeline.configureHTTP2(context.pipeline.syncOperations, limits: limits, configuration: configuration)
    }
}

/// Builds the client-side pipelines of the front: HTTP/1.1, HTTP/2, and TLS choosing between them.
enum FrontPipeline {
    static func configureHTTP1(
        _ sync: ChannelPipeline.SynchronousOperations, position: ChannelPipeline.SynchronousOperations.Position,
        limits: ProxyLimits, configuration: ProxyStreamConfiguration
    ) throws {
        try sync.addHandler(HTTP1FrontHandler(configuration: configuration), position: position)
    }

    /// The client's address (IP).
    static func clientIP(of channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Each HTTP/2 stream's window (and the connection's, topped up to the same size).
    static let initialWindowSize = 1 << 20

    static func configureHTTP2(_ sync: ChannelPipeline.SynchronousOperations, limits: ProxyLimits, configuration: ProxyStreamConfiguration) throws {
        var settings = HTTP2ServerCodec.Settings()
        settings.maxConcurrentStreams = limits.maxConcurrentStreams
        settings.maxHeaderListSize = limits.maxHeaderBytes
        settings.initialWindowSize = initialWindowSize
        let codec = HTTP2ServerCodec(settings: settings, allocator: ByteBufferAllocator())
        let front = HTTP2FrontHandler(configuration: configuration, codec: codec, targetWindow: initialWindowSize)
        codec.handler = front
        try sync.addHandler(codec)
        try sync.addHandler(front)
    }

    /// TLS first; once the handshake settles ALPN, the HTTP/2 or HTTP/1.1 handlers.
    static func configureTLS(
        channel: any Channel, context: NIOSSLContext, limits: ProxyLimits, configuration: ProxyStreamConfiguration,
        handshakeFailures: Counter? = nil
    ) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOSSLServerHandler(context: context))
        if let handshakeFailures { try sync.addHandler(TLSHandshakeFailureCounter(failures: handshakeFailures)) }
        try sync.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
        try sync.addHandler(CloseOnIdleHandler())
        let alpn = ApplicationProtocolNegotiationHandler { result, channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                switch result {
                case .negotiated("h2"):
                    try configureHTTP2(sync, limits: limits, configuration: configuration)
                default:
                    try configureHTTP1(sync, position: .last, limits: limits, configuration: configuration)
                }
            }
        }
        try sync.addHandler(alpn)
    }
}

/// The TLS context new connections use; ``reload()`` swaps in freshly read certificate and key files
/// (on SIGHUP) without touching open connections.
public final class TLSContextBox: Sendable {
    /// The files the current context was read from: certificate chain, key, and with mutual TLS the CAs
    /// (PEM) a client's certificate must be signed by.
    public struct Files: Sendable, Equatable {
        public var certificatePath: String
        public var keyPath: String
        public var clientCAPath: String?
    }

    private let box: NIOLockedValueBox<(files: Files, context: NIOSSLContext)>

    /// Reads the PEM certificate chain and key (and the client CAs); throws when they cannot be read or
    /// do not match.
    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil) throws {
        let files = Files(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath)
        self.box = NIOLockedValueBox((files, try Self.load(files)))
    }

    public var files: Files { box.withLockedValue { $0.files } }
    var current: NIOSSLContext { box.withLockedValue { $0.context } }

    /// Reads `files` (nil: the current ones again); on failure the previous files and context stay in
    /// use and the error is thrown.
    public func reload(files: Files? = nil) throws {
        let files = files ?? self.files
        let context = try Self.load(files)
        box.withLockedValue { $0 = (files, context) }
    }

    private static func load(_ files: Files) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: files.keyPath, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2", "http/1.1"]
        if let clientCAPath = files.clientCAPath {
            // Ask for a client certificate, require one, and verify its chain to these CAs (a client has
            // no host name to check).
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(try ClientTLS.certificates(clientCAPath, what: "CA file"))
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

@available(*, unavailable)
extension ProtocolSniffer: Sendable {}

/// Live counts the front keeps for its gauges.
final class FrontCounters: Sendable {
    /// HTTP/2 streams open on client connections (each is served by its own ``ProxyStream``).
    let streams = Atomic<Int>(0)
    /// Protocol-switched (WebSocket) connections open.
    let tunnels = Atomic<Int>(0)
}

/// Server-wide events sent down every open connection.
enum FrontServerEvent: Sendable {
    /// Graceful shutdown: close when idle, after the response in progress.
    case drain
}

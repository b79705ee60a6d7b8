import Crypto
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The admin listener every service runs: HTTP/1.1 on loopback by default, bearer token on every route
/// but the probes, bounded bodies, idle timeout and a connection cap, JSON errors with a request id.
///
/// On graceful shutdown it stops accepting and lets requests in progress finish.
public final class AdminHTTPServer: Service, Sendable {
    public struct Limits: Sendable {
        public var maxBodyBytes: Int = 1 << 20
        public var maxConnections: Int = 256
        public var idleTimeout: TimeAmount = .seconds(60)

        public init() {}
    }

    private let host: String
    private let port: Int
    /// Accepted tokens by caller name, as bytes for the constant-time comparison; replaced on SIGHUP.
    private let tokens: NIOLockedValueBox<[(name: String, bytes: [UInt8])]>
    private let router: AdminRouter
    private let limits: Limits
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let bound: EventLoopPromise<SocketAddress>
    private let activeConnections = NIOLockedValueBox(0)
    /// `<prefix>_admin_auth_failures_total`: calls refused for a missing or wrong token.
    private let authFailures: Counter?

    /// - Parameter metricsPrefix: the service's metric prefix (`gc_engine`, `balancer`, `node_agent`);
    ///   nil records no metric.
    /// - Parameter token: the `admin` token; `namedTokens` are accepted too, their names given as the
    ///   caller in ``HTTPRequest/caller``.
    public init(
        host: String, port: Int, token: String, namedTokens: [String: String] = [:], router: AdminRouter, limits: Limits = Limits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, metricsPrefix: String? = nil,
        logger: Logger
    ) {
        self.authFailures = metricsPrefix.map { Counter(label: $0 + "_admin_auth_failures_total") }
        self.host = host
        self.port = port
        var tokens = namedTokens
        if !token.isEmpty { tokens["admin"] = token }
        self.tokens = NIOLockedValueBox(Self.comparable(tokens))
        self.router = router
        self.limits = limits
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.bound = eventLoopGroup.any().makePromise()
    }

    public convenience init(settings: AdminListenerSettings, router: AdminRouter, metricsPrefix: String? = nil, logger: Logger) {
        var limits = Limits()
        limits.maxBodyBytes = settings.maxBodyBytes
        self.init(
            host: settings.host, port: settings.port, token: settings.token, namedTokens: settings.namedTokens, router: router,
            limits: limits,
            metricsPrefix: metricsPrefix, logger: logger)
    }

    /// The address the server listens on, once it does (useful with port 0).
    public var listeningAddress: SocketAddress {
        get async throws { try await bound.futureResult.get() }
    }

    public func run() async throws {
        let idleTimeout = limits.idleTimeout
        let maxBodyBytes = limits.maxBodyBytes
        let maxConnections = limits.maxConnections
        let activeConnections = self.activeConnections
        let serverChannel: any Channel
        do {
            serverChannel = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 128)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { [self] channel in
                    let admitted = activeConnections.withLockedValue { count in
                        guard count < maxConnections else { return false }
                        count += 1
                        return true
                    }
                    guard admitted else { return channel.close() }
                    channel.closeFuture.whenComplete { _ in activeConnections.withLockedValue { $0 -= 1 } }
                    return channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                        try sync.addHandler(CloseOnIdleHandler())
                        try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                        try sync.addHandler(AdminConnectionHandler(server: self, maxBodyBytes: maxBodyBytes))
                    }
                }
                .bind(host: host, port: port)
                .get()
        } catch {
            bound.fail(error)
            throw AdminServerError.bindFailed(address: "\(host):\(port)", reason: "\(error)")
        }
        if let address = serverChannel.localAddress { bound.succeed(address) }
        logger.info("admin listener ready", metadata: ["admin.address": "\(host):\(serverChannel.localAddress?.port ?? port)"])
        // Runs until a graceful shutdown or cancellation closes the listener; requests in progress finish
        // on their own connections.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await serverChannel.closeFuture.get()
            } onGracefulShutdown: {
                serverChannel.close(promise: nil)
            }
        } onCancel: {
            serverChannel.close(promise: nil)
        }
    }

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        switch router.match(method: request.method, path: request.path) {
        case .notFound:
            return .error(.notFound, "no admin route \(request.method) \(request.path)", requestID: request.requestID)
        case .methodNotAllowed(let allowed):
            var response = HTTPResponse.error(.methodNotAllowed, "\(request.method) not allowed on \(request.path)", requestID: request.requestID)
            response.headers.add(name: "Allow", value: allowed.map { "\($0)" }.joined(separator: ", "))
            return response
        case .found(let route, let parameters):
            var request = request
            if route.requiresAuth {
                guard let caller = caller(request.headers) else {
                    var response = HTTPResponse.error(.unauthorized, "missing or wrong bearer token", requestID: request.requestID)
                    response.headers.add(name: "WWW-Authenticate", value: "Bearer")
                    authFailures?.increment()
                    logger.notice(
                        "admin request refused: bad token", metadata: ["http.path": "\(request.path)", "request.id": "\(request.requestID)"])
                    return response
                }
                request.caller = caller
            }
            request.parameters = parameters
            do {
                return try await route.handler(request)
            } catch let error as HTTPError {
                return .error(error.status, error.message, requestID: request.requestID)
            } catch {
                logger.error(
                    "admin handler failed", metadata: ["http.path": "\(request.path)", "error": "\(error)", "request.id": "\(request.requestID)"])
                return .error(.internalServerError, "\(error)", requestID: request.requestID)
            }
        }
    }

    private static func comparable(_ tokens: [String: String]) -> [(name: String, bytes: [UInt8])] {
        tokens.sorted { $0.key < $1.key }.map { (name: $0.key, bytes: Array($0.value.utf8)) }
    }

    /// SIGHUP: accepts the tokens of `settings` from the next call on (a token no longer there is
    /// refused at once) and logs the callers' names, never a token.
    public func reloadTokens(from settings: AdminListenerSettings) {
        let new = Self.comparable(settings.tokensByName)
        let changed = tokens.withLockedValue { current in
            let differs = current.map(\.name) != new.map(\.name) || !zip(current, new).allSatisfy { $0.bytes == $1.bytes }
            if differs { current = new }
            return differs
        }
        if changed {
            logger.notice("admin tokens reloaded", metadata: ["admin.callers": "\(new.map(\.name).joined(separator: ","))"])
        }
    }

    /// The name of the token the call carries, or nil. Every token is compared, in constant time, so
    /// the time taken does not tell which one (or how much of one) matched.
    private func caller(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "Authorization"), value.count > 7,
            value.prefix(7).lowercased() == "bearer "
        else { return nil }
        let presented = Array(value.dropFirst(7).utf8)
        var match: String?
        for token in tokens.withLockedValue({ $0 }) where constantTimeEqual(presented, token.bytes) {
            match = token.name
        }
        return match
    }
}

/// Compares secrets without an early exit, so timing does not reveal how much matched.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    // Hash both to a fixed length first so the length of the secret does not leak either.
    let ha = Array(SHA256.hash(data: a))
    let hb = Array(SHA256.hash(data: b))
    var diff: UInt8 = 0
    for i in 0..<ha.count { diff |= ha[i] ^ hb[i] }
    return diff == 0
}

public enum AdminServerError: Error, CustomStringConvertible {
    case bindFailed(address: String, reason: String)

    public var description: String {
        switch self {
        case .bindFailed(let address, let reason): return "cannot listen on \(address): \(reason)"
        }
    }
}

/// Closes a connection that has been idle past the `IdleStateHandler`'s timeout.
final class CloseOnIdleHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

@available(*, unavailable)
extension CloseOnIdleHandler: Sendable {}

/// Collects one admin request at a time (pipelined ones wait in `HTTPServerPipelineHandler`), answers it
/// through the server's router in a task, and writes the answer back on the connection's event loop.
final class AdminConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: AdminHTTPServer
    private let maxBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(server: AdminHTTPServer, maxBodyBytes: Int) {
        self.server = server
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > maxBodyBytes {
                tooLarge = true
            } else if !tooLarge {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let h = head else { return }
            head = nil
            let requestID = RequestID.accept(h.headers.first(name: RequestID.headerName))
            let keepAlive = h.isKeepAlive && !tooLarge
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            if tooLarge {
                write(
                    .error(.payloadTooLarge, "request body larger than \(maxBodyBytes) bytes", requestID: requestID), head: h, requestID: requestID,
                    keepAlive: false, context: context)
                return
            }
            let request = HTTPRequest(method: h.method, uri: h.uri, headers: h.headers, body: body, requestID: requestID)
            let server = self.server
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            Task {
                let response = await server.handle(request)
                eventLoop.execute {
                    handler.value.write(response, head: h, requestID: requestID, keepAlive: keepAlive, context: loopBound.value)
                }
            }
        }
    }

    private func write(_ response: HTTPResponse, head: HTTPRequestHead, requestID: String, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var response = response
        response.headers = response.allHeaders
        response.headers.replaceOrAdd(name: RequestID.headerName, value: requestID)
        response.headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        if !keepAlive { response.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: response.headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension AdminConnectionHandler: Sendable {}

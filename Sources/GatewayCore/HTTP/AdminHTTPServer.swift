import Crypto
import Logging
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
    private let token: String
    private let router: AdminRouter
    private let limits: Limits
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let bound: EventLoopPromise<SocketAddress>
    private let activeConnections = NIOLockedValueBox(0)

    public init(
        host: String, port: Int, token: String, router: AdminRouter, limits: Limits = Limits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.host = host
        self.port = port
        self.token = token
        self.router = router
        self.limits = limits
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.bound = eventLoopGroup.any().makePromise()
    }

    public convenience init(settings: AdminListenerSettings, router: AdminRouter, logger: Logger) {
        var limits = Limits()
        limits.maxBodyBytes = settings.maxBodyBytes
        self.init(host: settings.host, port: settings.port, token: settings.token, router: router, limits: limits, logger: logger)
    }

    /// The address the server listens on, once it does (useful with port 0).
    public var listeningAddress: SocketAddress {
        get async throws { try await bound.futureResult.get() }
    }

    public func run() async throws {
        let idleTimeout = limits.idleTimeout
        let serverChannel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
        do {
            serverChannel = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 128)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                        try sync.addHandler(CloseOnIdleHandler())
                        try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                        return try NIOAsyncChannel(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(inboundType: HTTPServerRequestPart.self, outboundType: HTTPServerResponsePart.self))
                    }
                }
        } catch {
            bound.fail(error)
            throw AdminServerError.bindFailed(address: "\(host):\(port)", reason: "\(error)")
        }
        if let address = serverChannel.channel.localAddress { bound.succeed(address) }
        logger.info("admin listener ready", metadata: ["admin.address": "\(host):\(serverChannel.channel.localAddress?.port ?? port)"])

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await serverChannel.executeThenClose { inbound in
                    for try await connection in inbound {
                        let admitted = activeConnections.withLockedValue { count in
                            guard count < limits.maxConnections else { return false }
                            count += 1
                            return true
                        }
                        guard admitted else {
                            connection.channel.close(promise: nil)
                            continue
                        }
                        group.addTask {
                            await self.serve(connection)
                            self.activeConnections.withLockedValue { $0 -= 1 }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            serverChannel.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                var tooLarge = false
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        head = h
                        body.clear()
                        tooLarge = false
                    case .body(var chunk):
                        if body.readableBytes + chunk.readableBytes > limits.maxBodyBytes {
                            tooLarge = true
                        } else {
                            body.writeBuffer(&chunk)
                        }
                    case .end:
                        guard let h = head else { continue }
                        let requestID = RequestID.accept(h.headers.first(name: RequestID.headerName))
                        var response: HTTPResponse
                        if tooLarge {
                            response = .error(.payloadTooLarge, "request body larger than \(limits.maxBodyBytes) bytes", requestID: requestID)
                        } else {
                            let request = HTTPRequest(method: h.method, uri: h.uri, headers: h.headers, body: body, requestID: requestID)
                            response = await handle(request)
                        }
                        response.headers.replaceOrAdd(name: RequestID.headerName, value: requestID)
                        response.headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
                        let keepAlive = h.isKeepAlive && !tooLarge
                        if !keepAlive { response.headers.replaceOrAdd(name: "Connection", value: "close") }
                        try await outbound.write(.head(HTTPResponseHead(version: h.version, status: response.status, headers: response.headers)))
                        if h.method != .HEAD { try await outbound.write(.body(.byteBuffer(response.body))) }
                        try await outbound.write(.end(nil))
                        head = nil
                        if !keepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("admin connection ended", metadata: ["error": "\(error)"])
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
            if route.requiresAuth, !authorized(request.headers) {
                var response = HTTPResponse.error(.unauthorized, "missing or wrong bearer token", requestID: request.requestID)
                response.headers.add(name: "WWW-Authenticate", value: "Bearer")
                logger.notice("admin request refused: bad token", metadata: ["http.path": "\(request.path)", "request.id": "\(request.requestID)"])
                return response
            }
            var request = request
            request.parameters = parameters
            do {
                return try await route.handler(request)
            } catch let error as HTTPError {
                return .error(error.status, error.message, requestID: request.requestID)
            } catch {
                logger.error("admin handler failed", metadata: ["http.path": "\(request.path)", "error": "\(error)", "request.id": "\(request.requestID)"])
                return .error(.internalServerError, "\(error)", requestID: request.requestID)
            }
        }
    }

    private func authorized(_ headers: HTTPHeaders) -> Bool {
        guard let value = headers.first(name: "Authorization"), value.count > 7,
            value.prefix(7).lowercased() == "bearer "
        else { return false }
        return constantTimeEqual(Array(value.dropFirst(7).utf8), Array(token.utf8))
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

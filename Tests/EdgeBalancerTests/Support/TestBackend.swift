import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 backend for balancer tests: answers every request with its own id as the body, after
/// an optional delay; `/health` (and `/__gateway/health`, the engine's) answers with a configurable status. It counts the requests it served and
/// has in flight (health checks apart), and can be killed (listener and every connection closed at once,
/// as a crashed process's would be).
final class TestBackend: Sendable {
    let id: String
    let port: Int
    private let serverChannel: any Channel
    private let state: Mutex<State>
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    private let connectionPeak: NIOLockedValueBox<Int>

    struct State {
        var delay: Duration = .zero
        var healthStatus: HTTPResponseStatus = .ok
        /// What requests other than health checks get.
        var status: HTTPResponseStatus = .ok
        var served = 0
        var inFlight = 0
        var peakInFlight = 0
    }

    private init(
        id: String, port: Int, serverChannel: any Channel, state: State, connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>,
        connectionPeak: NIOLockedValueBox<Int>
    ) {
        self.connectionPeak = connectionPeak
        self.id = id
        self.port = port
        self.serverChannel = serverChannel
        self.state = Mutex(state)
        self.connections = connections
    }

    /// Every backend's event loop: apart from the balancer's (the singleton group), as a backend on
    /// another host would be, so the balancer's work does not show up as one backend's latency. One
    /// thread, shared by all backends, so none is favoured; it lives as long as the test process.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Starts a backend on a free loopback port.
    static func start(id: String, delay: Duration = .zero) async throws -> TestBackend {
        let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
        let connectionPeak = NIOLockedValueBox(0)
        let box = BackendBox()
        let channel = try await ServerBootstrap(group: Self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let key = ObjectIdentifier(channel)
                let open = connections.withLockedValue {
                    $0[key] = channel
                    return $0.count
                }
                connectionPeak.withLockedValue { $0 = max($0, open) }
                channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: key) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(BackendHandler(backend: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let backend = TestBackend(
            id: id, port: channel.localAddress!.port!, serverChannel: channel, state: State(delay: delay), connections: connections,
            connectionPeak: connectionPeak)
        box.backend.withLock { $0 = backend }
        return backend
    }

    var delay: Duration {
        get { state.withLock { $0.delay } }
        set { state.withLock { $0.delay = newValue } }
    }

    var healthStatus: HTTPResponseStatus {
        get { state.withLock { $0.healthStatus } }
        set { state.withLock { $0.healthStatus = newValue } }
    }

    /// What requests other than health checks get.
    var status: HTTPResponseStatus {
        get { state.withLock { $0.status } }
        set { state.withLock { $0.status = newValue } }
    }

    /// Requests answered (or in progress), health checks apart.
    var served: Int { state.withLock { $0.served } }
    /// The most requests in progress at once (health checks apart).
    var peakInFlight: Int { state.withLock { $0.peakInFlight } }
    /// The most client connections open at once.
    var peakConnections: Int { connectionPeak.withLockedValue { $0 } }
    var inFlight: Int { state.withLock { $0.inFlight } }

    /// `id=…,host=127.0.0.1,port=…` plus extra fields, for `nodes.static`.
    func staticEntry(_ extra: String = "") -> String {
        "id=\(id),host=127.0.0.1,port=\(port)" + (extra.isEmpty ? "" : ",\(extra)")
    }

    /// Closes the listener and every connection at once.
    func kill() async {
        try? await serverChannel.close()
        for channel in connections.withLockedValue({ Array($0.values) }) {
            try? await channel.close()
        }
    }

    fileprivate func begin(health: Bool) -> (Duration, HTTPResponseStatus) {
        state.withLock { state in
            if !health {
                state.served += 1
                state.inFlight += 1
                state.peakInFlight = max(state.peakInFlight, state.inFlight)
            }
            return (state.delay, health ? state.healthStatus : state.status)
        }
    }

    fileprivate func end(health: Bool) {
        if !health { state.withLock { $0.inFlight -= 1 } }
    }
}

/// Lets handlers reach the backend once it exists.
private final class BackendBox: Sendable {
    let backend = Mutex<TestBackend?>(nil)
}

private final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let box: BackendBox
    private var head: HTTPRequestHead?

    init(backend: BackendBox) {
        self.box = backend
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head, let backend = box.backend.withLock({ $0 }) else { return }
            self.head = nil
            let isHealth = head.uri.hasPrefix("/health") || head.uri.hasPrefix("/__gateway/health")
            let (delay, status) = backend.begin(health: isHealth)
            let body = isHealth ? "ok" : backend.id
            let respond = {
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                headers.add(name: "X-Backend", value: backend.id)
                if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                backend.end(health: isHealth)
                if !head.isKeepAlive { context.close(promise: nil) }
            }
            if delay > .zero {
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanosecondsInt64)) { respond() }
            } else {
                respond()
            }
        }
    }
}

@available(*, unavailable)
extension BackendHandler: Sendable {}

extension Duration {
    var nanosecondsInt64: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

import GatewayCore
import NIOCore
import NIOPosix
import Synchronization

/// A TCP server on 127.0.0.1 that misbehaves on purpose: it answers with bytes a test chooses (garbage,
/// a reply header announcing a huge body), stays silent, or hangs up, so a client's failure handling can be
/// tested against a real socket.
///
/// Start one for the length of a closure with ``withFakeTCPServer(_:isolation:_:)``:
///
/// ```swift
/// try await withFakeTCPServer(.reply(FakeTCPServer.garbage)) { fake in
///     let client = RedisClient(configuration: .init(url: fake.redisURL), logger: logger)
///     // ... the first command fails with .protocolError
/// }
/// ```
///
/// Connections are served by a plain channel handler rather than `NIOAsyncChannel`: a client may still
/// be connecting while the server is torn down, and an accepted `NIOAsyncChannel` that nobody consumes
/// trips a debug-build precondition in NIO ("Deinited NIOAsyncWriter without calling finish()").
public final class FakeTCPServer: Sendable {
    /// What the server does with one accepted connection.
    public enum Behavior: Sendable {
        /// Reads and discards everything; never writes.
        case silent
        /// Writes `bytes` as soon as the connection is accepted, then reads silently (or hangs up).
        case sendOnConnect([UInt8], thenClose: Bool = false)
        /// Answers every chunk it reads with `bytes` (or answers the first one and hangs up).
        case reply([UInt8], thenClose: Bool = false)
        /// Hangs up at once.
        case close
    }

    /// Bytes that are not RESP: an HTTP status line (`H` is no RESP type byte).
    public static let garbage: [UInt8] = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8)

    /// A bulk-string header announcing a body of almost a terabyte, with no body.
    public static let oversizedBulkHeader: [UInt8] = Array("$999999999999\r\n".utf8)

    /// An array header announcing a billion elements, with no elements.
    public static let oversizedArrayHeader: [UInt8] = Array("*1000000000\r\n".utf8)

    /// A valid `+PONG` status reply.
    public static let pong: [UInt8] = Array("+PONG\r\n".utf8)

    public let host = "127.0.0.1"
    public let port: Int
    private let behaviors: [Behavior]
    private let state = Mutex<State>(State())

    private struct State {
        var accepted = 0
        var received: [UInt8] = []
        var open: [ObjectIdentifier: any Channel] = [:]
        var stopped = false
    }

    init(port: Int, behaviors: [Behavior]) {
        precondition(!behaviors.isEmpty, "give the fake server at least one behaviour")
        self.port = port
        self.behaviors = behaviors
    }

    /// A `redis://` URL pointing at this server.
    public var redisURL: RedisURL { RedisURL(host: host, port: port) }

    /// How many connections were accepted so far.
    public var acceptedConnections: Int { state.withLock { $0.accepted } }

    /// Every byte read from any connection so far (the first MiB).
    public var receivedBytes: [UInt8] { state.withLock { $0.received } }

    /// Sets up an accepted connection (on its event loop): the n-th connection gets `behaviors[n]`, later
    /// ones the last.
    func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        let (index, stopped): (Int, Bool) = state.withLock { state in
            defer { state.accepted += 1 }
            if !state.stopped { state.open[ObjectIdentifier(channel)] = channel }
            return (state.accepted, state.stopped)
        }
        if stopped { return channel.close() }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        let behavior = behaviors[min(index, behaviors.count - 1)]
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(FakeConnectionHandler(behavior: behavior, server: self))
        }
    }

    func record(_ chunk: ByteBuffer) {
        state.withLock { state in
            let room = max(0, (1 << 20) - state.received.count)
            state.received += chunk.readableBytesView.prefix(room)
        }
    }

    /// Refuses further connections and returns the open ones, to be closed.
    func stop() -> [any Channel] {
        state.withLock { state in
            state.stopped = true
            defer { state.open = [:] }
            return Array(state.open.values)
        }
    }
}

/// Plays one ``FakeTCPServer/Behavior`` on one connection.
final class FakeConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let behavior: FakeTCPServer.Behavior
    private let server: FakeTCPServer
    private var closing = false

    init(behavior: FakeTCPServer.Behavior, server: FakeTCPServer) {
        self.behavior = behavior
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        switch behavior {
        case .close:
            closing = true
            context.close(promise: nil)
        case .sendOnConnect(let bytes, let thenClose):
            write(bytes, thenClose: thenClose, context: context)
        case .silent, .reply:
            break
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        server.record(unwrapInboundIn(data))
        guard !closing, case .reply(let bytes, let thenClose) = behavior else { return }
        write(bytes, thenClose: thenClose, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The client hung up or reset: this connection is done.
        context.close(promise: nil)
    }

    private func write(_ bytes: [UInt8], thenClose: Bool, context: ChannelHandlerContext) {
        let written = context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)))
        guard thenClose else { return }
        closing = true
        // Hang up once everything is written (closing at once could drop what is still queued).
        let channel = context.channel
        written.whenComplete { _ in channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension FakeConnectionHandler: Sendable {}

/// Runs a ``FakeTCPServer`` on a free loopback port for the length of `body`, then closes it and every
/// connection it accepted.
///
/// - Parameters:
///   - behaviors: what to do with each accepted connection: the n-th connection gets the n-th behaviour,
///     later ones the last.
///   - body: the test, given the running server.
public func withFakeTCPServer<T>(
    _ behaviors: FakeTCPServer.Behavior...,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (FakeTCPServer) async throws -> T
) async throws -> T {
    let server = FakeTCPServerBox()
    let serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            guard let fake = server.value else { return channel.close() }
            return fake.initialize(channel)
        }
        .bind(host: "127.0.0.1", port: 0)
        .get()
    guard let port = serverChannel.localAddress?.port else {
        try? await serverChannel.close()
        throw LoopbackPortError.noLocalAddress
    }
    let fake = FakeTCPServer(port: port, behaviors: behaviors)
    server.value = fake

    func tearDown() async {
        try? await serverChannel.close()
        for channel in fake.stop() { try? await channel.close() }
    }
    do {
        let result = try await body(fake)
        await tearDown()
        return result
    } catch {
        await tearDown()
        throw error
    }
}

/// Hands the server object to the child initializer, which is set up before the port (and so the
/// server) is known.
private final class FakeTCPServerBox: Sendable {
    private let storage = Mutex<FakeTCPServer?>(nil)

    var value: FakeTCPServer? {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

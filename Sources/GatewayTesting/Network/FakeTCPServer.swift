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

    /// The behaviour of the next connection: the n-th connection gets `behaviors[n]`, later ones the last.
    private func acceptOne() -> Behavior {
        let index = state.withLock { state in
            defer { state.accepted += 1 }
            return state.accepted
        }
        return behaviors[min(index, behaviors.count - 1)]
    }

    private func record(_ chunk: ByteBuffer) {
        state.withLock { state in
            let room = max(0, (1 << 20) - state.received.count)
            state.received += chunk.readableBytesView.prefix(room)
        }
    }

    func serve(_ serverChannel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { connections in
            try await serverChannel.executeThenClose { inbound in
                for try await connection in inbound {
                    let behavior = acceptOne()
                    connections.addTask { await self.handle(connection, behavior: behavior) }
                }
            }
        }
    }

    private func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, behavior: Behavior) async {
        // Errors here are the client hanging up or the test ending; both just end this connection.
        try? await connection.executeThenClose { inbound, outbound in
            switch behavior {
            case .close:
                return
            case .silent:
                for try await chunk in inbound { record(chunk) }
            case .sendOnConnect(let bytes, let thenClose):
                try await outbound.write(ByteBuffer(bytes: bytes))
                if thenClose { return }
                for try await chunk in inbound { record(chunk) }
            case .reply(let bytes, let thenClose):
                for try await chunk in inbound {
                    record(chunk)
                    try await outbound.write(ByteBuffer(bytes: bytes))
                    if thenClose { return }
                }
            }
        }
    }
}

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
    let serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .bind(host: "127.0.0.1", port: 0) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    guard let port = serverChannel.channel.localAddress?.port else {
        try? await serverChannel.channel.close()
        throw LoopbackPortError.noLocalAddress
    }
    let server = FakeTCPServer(port: port, behaviors: behaviors)
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
        group.addTask { try await server.serve(serverChannel) }
        do {
            let result = try await body(server)
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

import Logging
import NIOCore
import NIOPosix

/// One connection to Redis. Any number of commands may be in flight at once (pipelining); replies are
/// matched to commands in order.
///
/// Safe to use from any task: commands are handed to the channel's event loop.
public final class RedisConnection: Sendable {
    let channel: any Channel
    public let configuration: RedisConfiguration
    /// `host:port`, for errors (made once: every command's failure path names it).
    let address: String
    /// The event loop the connection's I/O runs on.
    public var eventLoop: any EventLoop { channel.eventLoop }
    /// Identifies this connection within its pool.
    let id: Int

    /// Whether the connection is still open.
    public var isActive: Bool { channel.isActive }

    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    private init(channel: any Channel, configuration: RedisConfiguration, id: Int) {
        self.channel = channel
        self.configuration = configuration
        self.address = configuration.url.address
        self.id = id
    }

    /// Connects, authenticates and selects the database.
    ///
    /// - Parameters:
    ///   - configuration: where Redis is and the timeouts to use.
    ///   - eventLoop: the loop the connection lives on.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any(),
        id: Int = 0
    ) async throws(RedisError) -> RedisConnection {
        let url = configuration.url
        let address = url.address
        let maxReplyBytes = configuration.maxReplyBytes
        // TLS (rediss://): the context is made before connecting, so a bad file is reported as such.
        let tlsContext = url.tls ? try RedisTLS.context(for: configuration.tls) : nil
        let tlsName = configuration.tls.serverName ?? url.host
        let tlsDone = tlsContext == nil ? nil : eventLoop.makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(Int64(configuration.connectTimeout.nanoseconds)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tlsContext, let tlsDone {
                        try sync.addHandler(ClientTLS.handler(context: tlsContext, host: tlsName))
                        try sync.addHandler(TLSHandshakeHandler(done: tlsDone))
                    }
                    try sync.addHandler(RedisChannelHandler(address: address, maxReplyBytes: maxReplyBytes))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: url.host, port: url.port).get()
        } catch let error as ChannelError {
            tlsDone?.fail(error)
            if case .connectTimeout = error {
                throw .connectTimeout(address: address, after: configuration.connectTimeout)
            }
            throw .connectionRefused(address: address, reason: "\(error)")
        } catch {
            tlsDone?.fail(error)
            if let error = error as? RedisError { throw error }
            throw .connectionRefused(address: address, reason: Self.describeConnectError(error))
        }
        if let tlsDone {
            try await RedisTLS.awaitHandshake(tlsDone, on: channel, address: address, timeout: configuration.connectTimeout)
        }
        let connection = RedisConnection(channel: channel, configuration: configuration, id: id)
        do {
            try await connection.handshake()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return connection
    }

    private func handshake() async throws(RedisError) {
        let url = configuration.url
        var commands: [RedisCommand] = []
        if let password = url.password {
            if let user = url.user {
                commands.append(RedisCommand("AUTH", .string(user), .string(password)))
            } else {
                commands.append(RedisCommand("AUTH", .string(password)))
            }
        }
        if url.database != 0 {
            commands.append(RedisCommand("SELECT", .int(url.database)))
        }
        if let name = configuration.clientName {
            commands.append(RedisCommand("CLIENT", "SETNAME", .string(name)))
        }
        guard !commands.isEmpty else { return }
        let replies = try await pipeline(commands, timeout: configuration.connectTimeout)
        for (command, reply) in zip(commands, replies) {
            if case .error(let message) = reply {
                if command.name == "AUTH" { throw .authenticationFailed(message: message) }
                throw .server(command: command.name, message: message)
            }
        }
    }

    private static func describeConnectError(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return "\(first.error)"
        }
        return "\(error)"
    }

    // MARK: Commands

    /// Sends one command and returns its reply. An error reply throws ``RedisError/server(command:message:)``.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws(RedisError) -> RedisValue {
        let promise = channel.eventLoop.makePromise(of: RedisValue.self)
        let request = RedisRequest(
            payload: command.encoded, name: command.name, sink: .single(promise),
            timeout: .nanoseconds(Int64((timeout ?? configuration.commandTimeout).nanoseconds)))
        write(request, reply: promise)
        let reply = try await Self.awaitRedis(promise.futureResult, address: address)
        return try reply.throwingServerError(command: command.name)
    }

    /// Sends many commands in one write and returns their replies in order. Error replies are returned
    /// as ``RedisValue/error(_:)`` in their place, not thrown.
    public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async throws(RedisError) -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        var payload = channel.allocator.buffer(capacity: commands.reduce(0) { $0 + $1.encoded.readableBytes })
        for command in commands { payload.writeImmutableBuffer(command.encoded) }
        let promise = channel.eventLoop.makePromise(of: [RedisValue].self)
        let request = RedisRequest(
            payload: payload, name: commands.count == 1 ? commands[0].name : "pipeline(\(commands.count))",
            sink: .batch(count: commands.count, promise),
            timeout: .nanoseconds(Int64((timeout ?? configuration.commandTimeout).nanoseconds)))
        write(request, reply: promise)
        return try await Self.awaitRedis(promise.futureResult, address: address)
    }

    /// Writes a request whose reply goes to `reply`. Once the channel has closed its handler is gone from
    /// the pipeline and nothing would ever complete `reply`, so a failed write fails it (a no-op when
    /// the handler already failed it with a more precise error).
    private func write<Value: Sendable>(_ request: RedisRequest, reply: EventLoopPromise<Value>) {
        let address = self.address
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in reply.fail(RedisError.connectionClosed(address: address)) }
        channel.writeAndFlush(request, promise: written)
    }

    /// Switches the connection to pub/sub mode: from now on every reply is handed to `onPush`, in order,
    /// on the connection's event loop. Call it before the first SUBSCRIBE.
    func enterPubSubMode(onPush: @escaping @Sendable (RedisValue) -> Void) async throws(RedisError) {
        do {
            try await channel.eventLoop.submit { [channel] in
                try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self).onPush = onPush
            }.get()
        } catch {
            throw .connectionClosed(address: address)
        }
    }

    /// Writes a command whose replies arrive as pushes (pub/sub mode).
    func sendWithoutReply(_ command: RedisCommand) {
        channel.writeAndFlush(RedisRequest(payload: command.encoded, name: command.name, sink: .none), promise: nil)
    }

    /// Closes the connection; commands in flight fail with ``RedisError/connectionClosed(address:)``.
    public func close() async {
        try? await channel.close()
    }

    static func awaitRedis<T: Sendable>(_ future: EventLoopFuture<T>, address: String) async throws(RedisError) -> T {
        do {
            return try await future.get()
        } catch let error as RedisError {
            throw error
        } catch {
            throw .connectionClosed(address: address)
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return ns &+ attoseconds / 1_000_000_000
    }

    /// The duration as a NIO `TimeAmount`.
    public var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }

    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix

/// Receives the response of the exchange currently using an upstream connection.
/// All calls happen on the connection's event loop.
protocol UpstreamExchangeDelegate: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ chunk: ByteBuffer)
    func upstreamResponseEnd()
    /// The end of one read burst: flush what was relayed.
    func upstreamReadComplete()
    func upstreamClosed()
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// A keep-alive HTTP/1.1 connection to a backend, bound to one event loop.
final class UpstreamConnection {
    let channel: any Channel
    let target: UpstreamTarget
    fileprivate let handler: UpstreamChannelHandler
    weak var delegate: (any UpstreamExchangeDelegate)?
    /// Requests this connection has carried.
    var uses = 0
    /// Set when the backend said `Connection: close`, or the response was not read to its end.
    var reusable = true
    /// The loop pool it goes back to.
    weak var pool: UpstreamLoopPool?

    fileprivate init(channel: any Channel, target: UpstreamTarget, handler: UpstreamChannelHandler) {
        self.channel = channel
        self.target = target
        self.handler = handler
    }

    var isActive: Bool { channel.isActive }

    func write(_ part: HTTPClientRequestPart) {
        channel.write(part, promise: nil)
    }

    func writeAndFlush(_ part: HTTPClientRequestPart) {
        channel.writeAndFlush(part, promise: nil)
    }

    func flush() { channel.flush() }

    /// Stops or resumes reading responses (backpressure from a slow client).
    func setReadingPaused(_ paused: Bool) {
        handler.setReadingPaused(paused)
    }

    func close() {
        reusable = false
        channel.close(promise: nil)
    }
}

/// Relays response parts of an upstream connection to its current exchange.
final class UpstreamChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    fileprivate weak var connection: UpstreamConnection?
    private var readPaused = false
    private var pendingRead = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection, let delegate = connection.delegate else {
            // A response nobody waits for (the backend spoke out of turn): the connection is unusable.
            connection?.reusable = false
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if !head.isKeepAlive { connection.reusable = false }
            delegate.upstreamResponseHead(head)
        case .body(let chunk):
            delegate.upstreamResponseBody(chunk)
        case .end:
            delegate.upstreamResponseEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection {
            connection.reusable = false
            connection.pool?.forget(connection)
            connection.delegate?.upstreamClosed()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func setReadingPaused(_ paused: Bool) {
        readPaused = paused
        if !paused, pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }
}

@available(*, unavailable)
extension UpstreamChannelHandler: Sendable {}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

/// Idle keep-alive connections to backends, for one event loop: exchanges on that loop reuse them
/// without any locking or thread hop.
final class UpstreamLoopPool {
    let eventLoop: any EventLoop
    private var idle: [String: [UpstreamConnection]] = [:]
    let maxIdlePerTarget: Int
    let maxUsesPerConnection: Int

    init(eventLoop: any EventLoop, maxIdlePerTarget: Int, maxUsesPerConnection: Int = 10_000) {
        self.eventLoop = eventLoop
        self.maxIdlePerTarget = maxIdlePerTarget
        self.maxUsesPerConnection = maxUsesPerConnection
    }

    /// An idle connection to `target`, or a new one, handed to `completion` on this loop. `reused` tells
    /// which (a reused connection may have been closed by the backend in the meantime, which makes a
    /// failure on it safe to retry).
    func acquire(
        _ target: UpstreamTarget, connectTimeout: TimeAmount,
        completion: @escaping (Result<(connection: UpstreamConnection, reused: Bool), any Error>) -> Void
    ) {
        eventLoop.preconditionInEventLoop()
        // Mutated in place: copying the list out of the dictionary and back made every acquire copy
        // the whole array (a retain and a release of each idle connection, on the slow side-table path
        // because connections are weakly referenced).
        while let connection = idle[target.address]?.popLast() {
            if connection.isActive {
                completion(.success((connection, true)))
                return
            }
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamChannelHandler())
                }
            }
            .connect(host: target.host, port: target.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamChannelHandler.self) else {
                        channel.close(promise: nil)
                        completion(.failure(ChannelError.ioOnClosedChannel))
                        return
                    }
                    let connection = UpstreamConnection(channel: channel, target: target, handler: handler)
                    handler.connection = connection
                    connection.pool = self
                    completion(.success((connection, false)))
                case .failure(let error):
                    completion(.failure(error))
                }
            }
    }

    /// Takes back a connection whose exchange finished cleanly.
    func release(_ connection: UpstreamConnection) {
        connection.delegate = nil
        connection.uses += 1
        guard connection.reusable, connection.isActive, connection.uses < maxUsesPerConnection else {
            connection.close()
            return
        }
        guard idle[connection.target.address, default: []].count < maxIdlePerTarget else {
            connection.close()
            return
        }
        connection.setReadingPaused(false)
        idle[connection.target.address, default: []].append(connection)  // in place, no copy
    }

    /// Drops a connection that closed.
    func forget(_ connection: UpstreamConnection) {
        guard let i = idle[connection.target.address]?.firstIndex(where: { $0 === connection }) else { return }
        idle[connection.target.address]?.remove(at: i)
    }

    /// Idle connection count, for metrics and tests.
    var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }

    func closeAll() {
        for list in idle.values { for c in list { c.close() } }
        idle = [:]
    }
}

@available(*, unavailable)
extension UpstreamLoopPool: Sendable {}

/// One ``UpstreamLoopPool`` per event loop of a group.
public final class UpstreamPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBound<UpstreamLoopPool>]

    public init(group: any EventLoopGroup, maxIdlePerTarget: Int = 64) {
        var pools: [ObjectIdentifier: NIOLoopBound<UpstreamLoopPool>] = [:]
        for loop in group.makeIterator() {
            let pool = try! loop.submit {
                NIOLoopBound(UpstreamLoopPool(eventLoop: loop, maxIdlePerTarget: maxIdlePerTarget), eventLoop: loop)
            }.wait()
            pools[ObjectIdentifier(loop)] = pool
        }
        self.pools = pools
    }

    /// The pool of the loop the caller runs on (must be one of the group's loops).
    func pool(for eventLoop: any EventLoop) -> UpstreamLoopPool {
        guard let bound = pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop \(eventLoop) is not in the proxy's group")
        }
        return bound.value
    }

    /// Closes every idle upstream connection.
    public func closeAll() {
        for bound in pools.values {
            let loop = bound.eventLoop
            loop.execute { bound.value.closeAll() }
        }
    }
}

import NIOCore
import NIOHTTP1

/// A whole-response exchange over the same per-loop keep-alive pools the streaming proxy uses, for
/// callers that need the response in hand (filling a response cache).
extension UpstreamPools {
    public enum FetchError: Error, Sendable, Equatable {
        case connectFailed
        case connectTimeout
        case responseTimeout
        case upstreamClosed
        case responseTooLarge(limit: Int)
        /// The target stayed at its connection limit for the whole connect timeout.
        case poolExhausted

        /// The proxy's view of the same failure.
        public var proxyFailure: ProxyOutcome.Failure {
            switch self {
            case .connectFailed, .responseTooLarge: return .connectFailed
            case .connectTimeout: return .connectTimeout
            case .responseTimeout: return .responseTimeout
            case .upstreamClosed: return .upstreamClosed
            case .poolExhausted: return .poolExhausted
            }
        }
    }

    /// Sends `head` (and `body`) to `target` and collects the response, up to `maxResponseBytes`.
    /// Must be called on one of the group's event loops; completes on it.
    public func fetch(
        _ target: UpstreamTarget, head: HTTPRequestHead, body: ByteBuffer? = nil, connectTimeout: TimeAmount,
        responseTimeout: TimeAmount, maxResponseBytes: Int, on eventLoop: any EventLoop
    ) -> EventLoopFuture<HTTPResponse> {
        let promise = eventLoop.makePromise(of: HTTPResponse.self)
        let pool = self.pool(for: eventLoop)
        pool.acquire(target, connectTimeout: connectTimeout) { result in
            switch result {
            case .failure(let error):
                switch ProxyOutcome.Failure(acquireError: error) {
                case .connectTimeout: promise.fail(FetchError.connectTimeout)
                case .poolExhausted: promise.fail(FetchError.poolExhausted)
                default: promise.fail(FetchError.connectFailed)
                }
            case .success(let acquired):
                let exchange = BufferedExchange(
                    connection: acquired.connection, pool: pool, promise: promise, maxResponseBytes: maxResponseBytes)
                exchange.start(head: head, body: body, responseTimeout: responseTimeout)
            }
        }
        return promise.futureResult
    }
}

/// Collects one response on a pooled connection; gives the connection back when it ends cleanly.
private final class BufferedExchange: UpstreamExchangeDelegate {
    private let connection: UpstreamConnection
    private let pool: UpstreamLoopPool
    private let promise: EventLoopPromise<HTTPResponse>
    private let maxResponseBytes: Int
    private var response: HTTPResponse?
    private var timer: Scheduled<Void>?
    private var timedOut = false
    private var done = false
    /// Keeps itself alive while the connection holds only a weak reference to it.
    private var retainSelf: BufferedExchange?

    init(connection: UpstreamConnection, pool: UpstreamLoopPool, promise: EventLoopPromise<HTTPResponse>, maxResponseBytes: Int) {
        self.connection = connection
        self.pool = pool
        self.promise = promise
        self.maxResponseBytes = maxResponseBytes
    }

    func start(head: HTTPRequestHead, body: ByteBuffer?, responseTimeout: TimeAmount) {
        retainSelf = self
        connection.delegate = self
        var head = head
        head.version = .http1_1
        head.headers.remove(name: "Connection")
        if let body {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
            head.headers.remove(name: "Transfer-Encoding")
        }
        connection.write(.head(head))
        if let body, body.readableBytes > 0 { connection.write(.body(.byteBuffer(body))) }
        connection.writeAndFlush(.end(nil))
        let loopBound = NIOLoopBound(self, eventLoop: connection.channel.eventLoop)
        timer = connection.channel.eventLoop.scheduleTask(in: responseTimeout) {
            loopBound.value.timedOut = true
            loopBound.value.connection.close()
        }
    }

    func upstreamResponseHead(_ head: consuming ProxyResponseHead) {
        timer?.cancel()
        response = HTTPResponse(status: head.status, headers: head.headers)
    }

    /// Never called: a fetch asks for no protocol switch, and a 101 to it closes the connection.
    func upstreamTunnelBytes(_ bytes: ByteBuffer) { connection.close() }

    func upstreamResponseBody(_ chunk: ByteBuffer) {
        guard response != nil else { return }
        var chunk = chunk
        if response!.body.readableBytes + chunk.readableBytes > maxResponseBytes {
            fail(.responseTooLarge(limit: maxResponseBytes))
            connection.close()
            return
        }
        response!.body.writeBuffer(&chunk)
    }

    func upstreamResponseEnd() {
        guard !done, let response else { return }
        done = true
        timer?.cancel()
        pool.release(connection)
        promise.succeed(response)
        retainSelf = nil
    }

    func upstreamReadComplete() {}

    func upstreamClosed() {
        fail(timedOut ? .responseTimeout : .upstreamClosed)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {}

    private func fail(_ error: UpstreamPools.FetchError) {
        guard !done else { return }
        done = true
        timer?.cancel()
        connection.delegate = nil
        promise.fail(error)
        retainSelf = nil
    }
}

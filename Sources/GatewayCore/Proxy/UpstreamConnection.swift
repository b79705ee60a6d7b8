import NIOCore
import NIOHTTP1
import NIOPosix

/// Receives the response of the exchange currently using an upstream connection.
/// All calls happen on the connection's event loop.
protocol UpstreamExchangeDelegate: AnyObject {
    /// Taken over (consumed), so the exchange can add its headers without copying the head's.
    func upstreamResponseHead(_ head: consuming ProxyResponseHead)
    func upstreamResponseBody(_ chunk: ByteBuffer)
    func upstreamResponseEnd()
    /// Bytes from the backend after it switched protocols (101).
    func upstreamTunnelBytes(_ bytes: ByteBuffer)
    /// The end of one read burst: flush what was relayed.
    func upstreamReadComplete()
    func upstreamClosed()
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// A keep-alive HTTP/1.1 connection to a backend, or one HTTP/2 stream to it (h2c), bound to one event
/// loop. Either way the exchange speaks HTTP/1-style request and response parts.
final class UpstreamConnection {
    /// How the parts travel: serialized by our own HTTP/1.1 handler, or as parts down an HTTP/2 stream
    /// channel (whose codec turns them into frames).
    enum Transport {
        case http1(UpstreamHTTP1Handler)
        case h2Stream(UpstreamStreamHandler)
    }

    let channel: any Channel
    let target: UpstreamTarget
    let transport: Transport
    /// The exchange using the connection. Strong (a weak reference moves the exchange's handler to
    /// slow side-table reference counting on every retain): every way an exchange ends clears it (the
    /// pool's `release`, the exchange abandoning the connection, the connection closing), so the cycle
    /// with the exchange lasts as long as the exchange.
    var delegate: (any UpstreamExchangeDelegate)?
    /// Requests this connection has carried.
    var uses = 0
    /// Set when the backend said `Connection: close`, or the response was not read to its end.
    var reusable = true
    /// The loop pool it goes back to. Strong, for the same reason as ``delegate``; the pool lives as long
    /// as the server, and the connection lets go of it by closing.
    var pool: UpstreamLoopPool?
    /// The target's share of that pool, where it counts against the limit.
    let slot: UpstreamTargetPool
    /// The HTTP/2 connection carrying this stream; nil for an HTTP/1.1 connection.
    let session: UpstreamH2Session?

    /// Wraps `channel`, whose pipeline ends with the transport's handler, and attaches itself to it.
    init(channel: any Channel, target: UpstreamTarget, transport: Transport, slot: UpstreamTargetPool, session: UpstreamH2Session?) {
        self.channel = channel
        self.target = target
        self.transport = transport
        self.slot = slot
        self.session = session
        switch transport {
        case .http1(let handler): handler.connection = self
        case .h2Stream(let handler): handler.connection = self
        }
    }

    var isActive: Bool { channel.isActive }

    func write(_ part: HTTPClientRequestPart) {
        switch transport {
        case .http1(let handler): handler.write(part)
        case .h2Stream: channel.write(part, promise: nil)
        }
    }

    /// A request head with the plan's rewrites (see ``ForwardPlan/uri`` and ``ForwardPlan/host``), the
    /// request's forwarded fields and, when `chunked`, `Transfer-Encoding: chunked`. The HTTP/1.1
    /// transport writes them as it serializes, without a copy of `head`. `upgrade`: the protocol the
    /// request asks to switch to (HTTP/1.1 connections only; see ``ProxyRequest/upgrade``).
    func writeHead(_ head: HTTPRequestHead, uri: String?, host: String?, forwarded: ForwardedFields?, chunked: Bool, upgrade: String? = nil) {
        switch transport {
        case .http1(let handler):
            handler.writeHead(head, uri: uri, host: host, forwarded: forwarded, chunked: chunked, upgrade: upgrade)
        case .h2Stream:
            var head = head.rewrittenForUpstream(uri: uri, host: host, forwarded: forwarded)
            if chunked { head.headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked") }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
        }
    }

    func writeAndFlush(_ part: HTTPClientRequestPart) {
        write(part)
        flush()
    }

    func flush() {
        switch transport {
        case .http1(let handler): handler.flush()
        case .h2Stream: channel.flush()
        }
    }

    /// Stops or resumes reading responses (backpressure from a slow client).
    func setReadingPaused(_ paused: Bool) {
        switch transport {
        case .http1(let handler): handler.reads.setPaused(paused)
        case .h2Stream(let handler): handler.reads.setPaused(paused)
        }
    }

    func close() {
        reusable = false
        channel.close(promise: nil)
    }

    /// Bytes of a tunnel (after the backend switched protocols), sent as they are.
    func writeTunnelBytes(_ bytes: ByteBuffer) {
        guard case .http1(let handler) = transport else { return }
        handler.writeTunnelBytes(bytes)
    }

    /// Closes once what was written has gone out (the end of a tunnel: its last bytes still arrive), or
    /// after ``ChannelClosing/flushTimeout`` if the backend does not read them.
    func closeAfterWrites() {
        reusable = false
        ChannelClosing.close(channel, after: channel.writeAndFlush(channel.allocator.buffer(capacity: 0)))
    }

    // MARK: - From the transport's handler

    /// A response part arrived (a head without hop-by-hop headers).
    func received(_ part: consuming HTTPClientResponsePart) {
        switch consume part {
        case .head(let head):
            receivedHead(ProxyResponseHead(head))
        case .body(let chunk):
            awaitingDelegate()?.upstreamResponseBody(chunk)
        case .end:
            awaitingDelegate()?.upstreamResponseEnd()
        }
    }

    /// A response head (from the HTTP/1.1 transport: its fields as they came, without hop-by-hop fields).
    func receivedHead(_ head: consuming ProxyResponseHead) {
        awaitingDelegate()?.upstreamResponseHead(head)
    }

    /// The exchange a response part goes to. A part nobody waits for (the backend spoke out of turn)
    /// makes the connection unusable: it is closed, and nil returned.
    private func awaitingDelegate() -> (any UpstreamExchangeDelegate)? {
        guard let delegate else {
            reusable = false
            channel.close(promise: nil)
            return nil
        }
        return delegate
    }

    func readComplete() {
        delegate?.upstreamReadComplete()
    }

    /// Bytes of a tunnel from the backend.
    func receivedTunnelBytes(_ bytes: ByteBuffer) {
        awaitingDelegate()?.upstreamTunnelBytes(bytes)
    }

    /// The channel went inactive: the pool and the exchange hear of it once.
    func closed() {
        reusable = false
        pool?.closed(self)
        delegate?.upstreamClosed()
        delegate = nil
        pool = nil
    }

    func writabilityChanged(isWritable: Bool) {
        delegate?.upstreamWritabilityChanged(isWritable: isWritable)
    }
}

/// `read()` held back while a slow client cannot take the response.
struct PausableReads {
    private var paused = false
    private var pending = false
    var context: ChannelHandlerContext?

    /// From the handler's `read(context:)`.
    mutating func read(_ context: ChannelHandlerContext) {
        if paused {
            pending = true
        } else {
            context.read()
        }
    }

    mutating func setPaused(_ paused: Bool) {
        self.paused = paused
        if !paused, pending, let context {
            pending = false
            context.read()
        }
    }
}

/// An HTTP/1.1 connection to a backend: writes requests as bytes and parses responses with
/// ``HTTP1Parser``, relaying parts to the connection's exchange without a codec handler per direction.
final class UpstreamHTTP1Handler: ChannelDuplexHandler, TickFlushing {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Response heads longer than this are a protocol error (the connection closes; the exchange gets 502).
    static let maxResponseHeadBytes = 64 * 1024

    /// Strong until the channel goes inactive (then released, ending the cycle through the pipeline), so
    /// the pool always hears of a close even when nobody holds the connection any more.
    fileprivate(set) var connection: UpstreamConnection?
    var reads = PausableReads()
    private var context: ChannelHandlerContext?
    private var parser = HTTP1Parser(kind: .response, maxHeadBytes: UpstreamHTTP1Handler.maxResponseHeadBytes, fieldsOnWire: true)
    private var input = ByteBuffer()
    /// Put in place of a fully read input, so the channel's receive buffer is free to be reused.
    private let noInput = ByteBuffer()
    /// The request's head (and small body parts) not yet written, so a request goes out as one buffer.
    private var outbound: ByteBuffer?
    /// The last such buffer, reused for the next request once the socket has taken it.
    private var headBuffers = ReusableBuffer()
    private var requestChunked = false
    /// The request in progress asked to switch protocols: a 101 is its answer only then.
    private var upgradeRequested = false
    /// A 101 head arrived: the bytes after its end are the new protocol's.
    private var switching = false
    /// After a 101: every byte read goes to the exchange as it is, none is parsed.
    private var tunneling = false
    var tickFlushQueued = false
    var tickFlushQueue: TickFlushQueue?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        reads.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        reads.context = nil
        connection = nil
    }

    // MARK: Requests

    /// See ``UpstreamConnection/writeHead(_:uri:host:forwarded:chunked:upgrade:)``.
    func writeHead(_ head: HTTPRequestHead, uri: String?, host: String?, forwarded: ForwardedFields?, chunked: Bool, upgrade: String? = nil) {
        guard let context else { return }
        parser.respondingToHEAD = head.method == .HEAD
        requestChunked = chunked || head.headers.contains(name: "Transfer-Encoding")
        upgradeRequested = upgrade != nil
        var buffer = headBuffers.take(context, capacity: 1024)  // the serializer grows it for a larger head
        HTTP1Serializer.writeRequestHead(head, uri: uri, host: host, forwarded: forwarded, chunked: chunked, upgrade: upgrade, into: &buffer)
        outbound = buffer
    }

    func writeTunnelBytes(_ bytes: ByteBuffer) {
        guard let context, tunneling else { return }
        context.write(wrapOutboundOut(bytes), promise: nil)
    }

    func write(_ part: HTTPClientRequestPart) {
        guard let context else { return }
        switch part {
        case .head(let head):
            writeHead(head, uri: nil, host: nil, forwarded: nil, chunked: false)
        case .body(.byteBuffer(var chunk)):
            guard chunk.readableBytes > 0 else { return }
            if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 32) }
            if requestChunked { HTTP1Serializer.writeChunkHeader(length: chunk.readableBytes, into: &outbound!) }
            if chunk.readableBytes <= 4096 {
                outbound!.writeBuffer(&chunk)
                if requestChunked { outbound!.writeStaticString("\r\n") }
            } else {
                context.write(wrapOutboundOut(outbound!), promise: nil)
                context.write(wrapOutboundOut(chunk), promise: nil)
                outbound = nil
                if requestChunked {
                    outbound = context.channel.allocator.buffer(capacity: 32)
                    outbound!.writeStaticString("\r\n")
                }
            }
        case .body(.fileRegion):
            preconditionFailure("the proxy does not send file regions upstream")
        case .end:
            if requestChunked {
                if outbound == nil { outbound = context.channel.allocator.buffer(capacity: 8) }
                outbound!.writeStaticString(HTTP1Serializer.lastChunk)
            }
        }
    }

    func flush() {
        guard let context else { return }
        if let buffer = outbound {
            outbound = nil
            context.write(wrapOutboundOut(buffer), promise: nil)
            headBuffers.keep(buffer)
        }
        flushAtEndOfTick(on: context.eventLoop)
    }

    func flushQueuedWrites() {
        context?.flush()
    }

    // MARK: Responses

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if tunneling {
            connection?.receivedTunnelBytes(bytes)
            return
        }
        if input.readableBytes == 0 {
            input = bytes
        } else {
            input.writeBuffer(&bytes)
        }
        defer { if input.readableBytes == 0 { input = noInput } }
        while let connection {
            let next: HTTP1Part?
            do {
                next = try parser.next(&input)
            } catch {
                // Not HTTP: the exchange sees the connection close (502 before any response byte).
                connection.reusable = false
                context.close(promise: nil)
                return
            }
            guard let part = consume next else { return }
            switch consume part {
            case .responseHead(let head, let keepAlive):
                if head.status.code == 101 {
                    // Switching protocols when the request did not ask to: not HTTP any more (502).
                    guard upgradeRequested else {
                        connection.reusable = false
                        context.close(promise: nil)
                        return
                    }
                    switching = true
                    connection.reusable = false
                }
                if !keepAlive { connection.reusable = false }
                connection.receivedHead(head)
            case .body(let chunk):
                connection.received(.body(chunk))
            case .end:
                if switching {
                    tunneling = true
                    connection.received(.end(nil))
                    // The new protocol's first bytes may have come with the 101.
                    if input.readableBytes > 0 {
                        let rest = input
                        input = noInput
                        connection.receivedTunnelBytes(rest)
                    }
                    return
                }
                connection.received(.end(nil))
            case .requestHead:
                preconditionFailure("a response parser produced a request head")
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.readComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection {
            self.connection = nil
            // A response delimited by the close ends here.
            if case .end? = parser.connectionClosed() { connection.received(.end(nil)) }
            connection.closed()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.writabilityChanged(isWritable: context.channel.isWritable)
    }

    func read(context: ChannelHandlerContext) {
        reads.read(context)
    }
}

/// Relays the response parts of one upstream HTTP/2 stream (after NIO's HTTP/2-to-HTTP/1 client codec)
/// to its connection's exchange.
final class UpstreamStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Strong until the channel goes inactive, as in ``UpstreamHTTP1Handler``.
    fileprivate(set) var connection: UpstreamConnection?
    var reads = PausableReads()

    func handlerAdded(context: ChannelHandlerContext) { reads.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        reads.context = nil
        connection = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            connection?.received(unwrapInboundIn(data))
            return
        }
        HopByHop.strip(&head.headers)  // HTTP/2 has none to speak of; what the codec adds stays on this hop
        connection?.received(.head(head))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.readComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection {
            self.connection = nil
            connection.closed()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.writabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        reads.read(context)
    }
}

@available(*, unavailable)
extension UpstreamHTTP1Handler: Sendable {}

@available(*, unavailable)
extension UpstreamStreamHandler: Sendable {}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

/// One output buffer a connection writes again and again. A buffer handed to the channel is shared
/// with it until the socket has taken its bytes; reusing it after that costs no allocation, and reusing
/// it before (a slow peer) only makes ByteBuffer copy, never touches the bytes in flight.
struct ReusableBuffer {
    private var buffer: ByteBuffer?

    /// An empty buffer of at least `capacity` bytes: the kept one when nothing else holds it.
    mutating func take(_ context: ChannelHandlerContext, capacity: Int) -> ByteBuffer {
        if var kept = buffer.take() {
            kept.clear(minimumCapacity: capacity)
            return kept
        }
        return context.channel.allocator.buffer(capacity: capacity)
    }

    /// Keeps `written` (already handed to the channel) for the next ``take(_:capacity:)``, unless it
    /// grew large (a burst of body chunks): an idle connection holds at most 16 KiB this way.
    mutating func keep(_ written: ByteBuffer) {
        buffer = written.capacity <= 16 * 1024 ? written : nil
    }
}

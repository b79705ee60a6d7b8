import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import Synchronization

/// One client connection speaking HTTP/2, after ``HTTP2ServerCodec`` (which runs the protocol: framing,
/// HPACK, stream states, flow-control accounting, SETTINGS, PING, the limits on concurrent streams,
/// header list size and floods). Every stream is served right here by a ``ProxyStream`` with an
/// ``HTTP2FrontStream`` as its client, without a child channel and pipeline per stream, or a
/// conversion of every frame to HTTP/1 parts and back.
///
/// - Flow control: the connection and each stream get WINDOW_UPDATE frames as their windows drain
///   below half (as NIO's stream multiplexer does); a stream whose request body the backend is not
///   taking gets none until it is, which stops that client upload only. A stream whose client window is
///   exhausted stops reading its backend response.
/// - Graceful shutdown: GOAWAY naming the last stream accepted, then a close when the open streams have
///   finished.
final class HTTP2FrontHandler: ChannelInboundHandler, HTTP2StreamHandler, TickFlushing {
    /// Nothing is read through the pipeline: the codec calls the ``HTTP2StreamHandler`` methods.
    typealias InboundIn = Never

    private let configuration: ProxyStreamConfiguration
    /// The connection's codec, which this handler writes through (directly, not down the pipeline).
    let codec: HTTP2ServerCodec
    /// The window size the connection and each stream are topped up to (the initial window size the
    /// connection's SETTINGS announce).
    let targetWindow: Int
    private(set) var context: ChannelHandlerContext?
    private var streams = StreamTable<HTTP2StreamID, HTTP2FrontStream>()
    private var clientIP = "unknown"
    private var lastStreamID = HTTP2StreamID.rootStream
    private var goAwaySent = false
    /// Set when the drained connection has started to close.
    private var closing = false
    /// Whether a flush is scheduled for the end of this event-loop tick.
    var tickFlushQueued = false
    var tickFlushQueue: TickFlushQueue?
    /// One response-timeout timer for all streams.
    private var responseTimer = LazyTimer()

    init(configuration: ProxyStreamConfiguration, codec: HTTP2ServerCodec, targetWindow: Int) {
        self.configuration = configuration.isHTTP2 ? configuration : configuration.forHTTP2()
        self.codec = codec
        self.targetWindow = targetWindow
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientIP = FrontPipeline.clientIP(of: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        responseTimer.cancel()
        closeAllStreams()
        codec.handler = nil
        self.context = nil
    }

    // MARK: - From the codec

    func receivedHeaders(_ fields: HPACKHeaders, stream id: HTTP2StreamID, endStream: Bool) {
        if let stream = streams[id] {
            // Trailers: the request ends (their fields are not forwarded).
            if endStream { stream.receivedEnd() }
        } else if let context {
            openStream(id, fields: fields, endStream: endStream, context: context)
        }
    }

    func receivedData(_ data: ByteBuffer, stream id: HTTP2StreamID, endStream: Bool) {
        guard let stream = streams[id] else { return }
        if data.readableBytes > 0 { stream.receivedBody(data) }
        if endStream { stream.receivedEnd() }
    }

    func streamClosed(_ id: HTTP2StreamID) {
        if let stream = streams.removeValue(forKey: id) { stream.closed() }
        if goAwaySent && streams.isEmpty, let context {
            // The codec reports a stream closed by its last frame after the flush that sent it: close from
            // a fresh tick, once that flush is done.
            context.eventLoop.assumeIsolated().execute { [self] in
                if let context = self.context { self.closeIfDrained(context: context) }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for stream in streams.values { stream.readComplete() }
        flushIfNeeded()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .drain? = event as? FrontServerEvent {
            drain(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        responseTimer.cancel()
        closeAllStreams()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for stream in streams.values { stream.connectionWritabilityChanged(writable) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Protocol errors are the codec's (a stream reset, or GOAWAY and a close); what reaches here is an
        // I/O error of the connection.
        context.close(promise: nil)
    }

    // MARK: - Streams

    private func openStream(_ id: HTTP2StreamID, fields: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
        if goAwaySent && id > lastStreamID { return }  // past the GOAWAY: the codec ignores it
        lastStreamID = max(lastStreamID, id)
        guard let head = Self.requestHead(fields) else {
            codec.writeReset(stream: id, code: .protocolError)
            flushIfNeeded()
            return
        }
        let stream = HTTP2FrontStream(id: id, connection: self)
        streams[id] = stream
        configuration.counters.streams.add(1, ordering: .relaxed)
        stream.start(configuration: configuration, clientIP: clientIP, head: head.0, info: head.1, endStream: endStream)
    }

    /// An HTTP/1-style request head from an HTTP/2 header block: the pseudo-headers become the method,
    /// target and `Host`; cookie fields split by HTTP/2 are joined again.
    ///
    /// Nil for a malformed block (RFC 9113 §8.1.1, §8.2, §8.3): a pseudo-header that is unknown,
    /// repeated or after a regular field, or whose value holds a space or control character; no
    /// `:method`, `:scheme` or `:path`, or an empty `:path`; CONNECT; a field name that is not a
    /// lower-case token; a connection-specific field, or `TE` other than `trailers`; a value with NUL,
    /// CR or LF. (This is the check NIO's header block validation makes, done in the pass that builds
    /// the head; the front turns NIO's off.) These are what could smuggle a second request or header
    /// into the HTTP/1.1 message sent upstream.
    static func requestHead(_ block: HPACKHeaders) -> (HTTPRequestHead, HTTP1HeadInfo)? {
        var method: String?
        var path: String?
        var scheme: String?
        var authority: String?
        var regularSeen = false
        var headers: [(String, String)] = []
        headers.reserveCapacity(block.count + 1)
        var cookies: String?
        var info = HTTP1HeadInfo(keepAlive: true, mayHaveContentLength: false)
        var headerBytes = 0
        for (name, value, _) in block {
            headerBytes += name.utf8.count + value.utf8.count + 4
            if name.utf8.first == UInt8(ascii: ":") {
                guard !regularSeen, isValidPseudoHeaderValue(value) else { return nil }
                switch role(of: name) {
                case .method where method == nil: method = value
                case .path where path == nil: path = value
                case .scheme where scheme == nil: scheme = value
                case .authority where authority == nil: authority = value
                default: return nil  // unknown (":protocol", ":status") or repeated
                }
                continue
            }
            regularSeen = true
            guard isValidFieldName(name), isValidFieldValue(value) else { return nil }
            switch role(of: name) {
            case .cookie:
                cookies = cookies.map { $0 + "; " + value } ?? value
                continue
            case .host:
                if info.host == nil { info.host = value }
            case .requestID:
                if info.requestID == nil { info.requestID = value }
            case .forwarded:
                info.hasForwardedHeaders = true
            case .contentLength:
                info.mayHaveContentLength = true
            case .te:
                guard value == "trailers" else { return nil }
                continue  // hop-by-hop: not forwarded
            case .gatewayOwned:
                continue  // the engine's own field (HopByHop.gatewayClientID): never a client's
            case .connectionSpecific:
                return nil
            case .other, .method, .path, .scheme, .authority:
                break
            }
            headers.append((name, value))
        }
        guard let method, let path, !path.isEmpty, scheme != nil, method != "CONNECT" else { return nil }
        if info.host == nil, let authority {
            info.host = authority
            headers.append(("host", authority))
        }
        if let cookies { headers.append(("cookie", cookies)) }
        info.headerBytes = headerBytes + 16
        let head = HTTPRequestHead(
            version: .init(major: 2, minor: 0), method: HTTPMethod(rawValue: method), uri: path, headers: HTTPHeaders(headers))
        return (head, info)
    }

    /// What a request field name means to the front.
    enum FieldRole: Equatable {
        case method, path, scheme, authority
        case cookie, host, requestID, forwarded, contentLength, te, connectionSpecific, gatewayOwned, other
    }

    /// The role of a (lower-case) field name, chosen by its length before any comparison: a switch over
    /// string literals would compare every name with each literal in turn.
    static func role(of name: String) -> FieldRole {
        switch name.utf8.count {
        case 2: return name == "te" ? .te : .other
        case 4: return name == "host" ? .host : .other
        case 5: return name == ":path" ? .path : .other
        case 6: return name == "cookie" ? .cookie : .other
        case 7:
            if name == ":method" { return .method }
            if name == ":scheme" { return .scheme }
            return name == "upgrade" ? .connectionSpecific : .other
        case 10:
            if name == ":authority" { return .authority }
            return name == "connection" || name == "keep-alive" ? .connectionSpecific : .other
        case 12: return name == "x-request-id" ? .requestID : .other
        case 14: return name == "content-length" ? .contentLength : .other
        case 15: return name == "x-forwarded-for" ? .forwarded : .other
        case 16:
            if name == "x-forwarded-host" { return .forwarded }
            return name == "proxy-connection" ? .connectionSpecific : .other
        case 17:
            if name == "x-forwarded-proto" { return .forwarded }
            return name == "transfer-encoding" ? .connectionSpecific : .other
        case 19: return name == "x-gateway-client-id" ? .gatewayOwned : .other
        default: return .other
        }
    }

    /// A lower-case token (RFC 9110 §5.6.2; HTTP/2 field names are lower case).
    static func isValidFieldName(_ name: String) -> Bool {
        !name.isEmpty
            && name.allUTF8 { c in
                switch c {
                case 0x21, 0x23...0x27, 0x2a, 0x2b, 0x2d, 0x2e, 0x30...0x39, 0x5e...0x7a, 0x7c, 0x7e: return true
                default: return false
                }
            }
    }

    /// No NUL, CR or LF (RFC 9113 §8.2.1).
    static func isValidFieldValue(_ value: String) -> Bool {
        value.allUTF8 { $0 != 0x00 && $0 != 0x0a && $0 != 0x0d }
    }

    /// No control character, space or DEL: a pseudo-header value becomes part of the request line.
    static func isValidPseudoHeaderValue(_ value: String) -> Bool {
        value.allUTF8 { $0 > 0x20 && $0 != 0x7f }
    }

    private func closeAllStreams() {
        let open = streams
        streams = StreamTable()
        for stream in open.values { stream.closed() }
    }

    /// Called by a stream once it is closed.
    func streamFinished() {
        configuration.counters.streams.subtract(1, ordering: .relaxed)
    }

    // MARK: - Flow control

    func windowChanged(stream id: HTTP2StreamID, inbound: Int?, outbound: Int?) {
        if id == .rootStream {
            // After GOAWAY with no stream left, the connection takes no frames but the last ones.
            if goAwaySent && streams.isEmpty { return }
            if let size = inbound, let increment = Self.increment(window: size, target: targetWindow) {
                codec.writeWindowUpdate(stream: .rootStream, increment: increment)
            }
            return
        }
        guard let stream = streams[id] else { return }
        if let size = inbound { stream.inboundWindowChanged(size) }
        if let size = outbound { stream.outboundWindowChanged(size) }
    }

    /// How much to add to a window of `window` bytes: back up to `target` once it has drained below half.
    static func increment(window: Int, target: Int) -> Int? {
        guard window < target / 2 else { return nil }
        return min(target - window, Int(Int32.max))
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: - Writing

    /// Flushes what was written through ``codec`` since its last flush, if anything.
    func flushIfNeeded() {
        if codec.needsFlush { codec.flush() }
    }

    /// Flushes once the event loop has handled the I/O of this tick: the responses that many streams'
    /// backends delivered together go out in one write.
    func scheduleFlush() {
        guard codec.needsFlush, let context else { return }
        flushAtEndOfTick(on: context.eventLoop)
    }

    func flushQueuedWrites() {
        flushIfNeeded()
    }

    // MARK: - Response timeouts

    func responseDeadlineSet(_ deadline: NIODeadline) {
        guard let context else { return }
        responseTimer.arm(at: deadline, on: context.eventLoop) { [self] in self.responseTimerFired() }
    }

    /// Times out the streams whose response is overdue and watches the earliest deadline left.
    private func responseTimerFired() {
        responseTimer.fired()
        let now = NIODeadline.now()
        var next: NIODeadline?
        for stream in Array(streams.values) {
            if let deadline = stream.checkResponseDeadline(now: now) { next = min(next ?? deadline, deadline) }
        }
        if let next { responseDeadlineSet(next) }
    }

    // MARK: - Shutdown

    private func drain(context: ChannelHandlerContext) {
        guard !goAwaySent else { return }
        goAwaySent = true
        codec.writeGoAway(lastStreamID: lastStreamID, code: .noError)
        flushIfNeeded()
        closeIfDrained(context: context)
    }

    /// After GOAWAY, once the last stream has closed: the output side closes when what was written has
    /// gone out, then the connection.
    private func closeIfDrained(context: ChannelHandlerContext) {
        guard goAwaySent, streams.isEmpty, !closing else { return }
        closing = true
        codec.flush()
        let outputClosed = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: outputClosed)
        outputClosed.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// One HTTP/2 stream of an ``HTTP2FrontHandler``: the ``ProxyClient`` of its ``ProxyStream``.
///
/// The response goes out as a HEADERS frame and DATA frames; the last DATA frame of a body is held until
/// the next part is known, so `END_STREAM` rides on it (a small response is two frames, not three).
final class HTTP2FrontStream: ProxyClient {
    let id: HTTP2StreamID
    /// Strong until the stream closes.
    private var connection: HTTP2FrontHandler?
    private var stream: ProxyStream<HTTP2FrontStream>?
    /// The response head, held until it is known whether a body follows (END_STREAM rides on it if not).
    private var pendingHead: (head: ProxyResponseHead, extras: ResponseHeadExtras)?
    private var heldChunk: ByteBuffer?
    private var responseEnded = false
    private var requestEnded = false
    /// Request-body flow control: window updates wait while the backend is not taking the body.
    private var bodyPaused = false
    private var inboundWindow: Int?
    /// The client's window for this stream's response; nil until NIO reports it.
    private var outboundWindow: Int?
    private var isClosed = false
    /// While the request body is being read: when it times out without another DATA frame (see
    /// ``ProxyLimits/bodyReadTimeout``); moved on with every frame, checked by the connection's timer.
    private var bodyDeadline: NIODeadline?
    private var bodyReadTimeout = TimeAmount.seconds(30)

    init(id: HTTP2StreamID, connection: HTTP2FrontHandler) {
        self.id = id
        self.connection = connection
    }

    func start(configuration: ProxyStreamConfiguration, clientIP: String, head: HTTPRequestHead, info: HTTP1HeadInfo, endStream: Bool) {
        let stream = ProxyStream(configuration: configuration, client: self, clientIP: clientIP)
        self.stream = stream
        requestEnded = endStream
        if !endStream {
            bodyReadTimeout = configuration.limits.bodyReadTimeout
            let deadline = NIODeadline.now() + bodyReadTimeout
            bodyDeadline = deadline
            connection?.responseDeadlineSet(deadline)
        }
        stream.requestHead(head, info: info, endsHere: endStream)
    }

    // MARK: From the connection

    func receivedBody(_ chunk: ByteBuffer) {
        guard !requestEnded else { return }
        // The clock starts again; the connection's timer finds the later deadline when it fires.
        if bodyDeadline != nil { bodyDeadline = .now() + bodyReadTimeout }
        stream?.requestBody(chunk)
    }

    func receivedEnd() {
        guard !requestEnded else { return }
        requestEnded = true
        bodyDeadline = nil
        stream?.requestEnd()
    }

    func readComplete() {
        stream?.clientReadComplete()
    }

    /// The stream is closed (both sides ended, or reset): the exchange in progress, if any, ends.
    func closed() {
        guard !isClosed else { return }
        isClosed = true
        let stream = self.stream
        self.stream = nil
        stream?.clientClosed()
        connection?.streamFinished()
        connection = nil
    }

    func connectionWritabilityChanged(_ writable: Bool) {
        stream?.clientWritabilityChanged(isWritable: writable && (outboundWindow ?? 1) > 0)
    }

    func inboundWindowChanged(_ size: Int) {
        inboundWindow = size
        if !bodyPaused { topUpInboundWindow() }
    }

    func outboundWindowChanged(_ size: Int) {
        let wasWritable = (outboundWindow ?? 1) > 0
        outboundWindow = size
        let writable = size > 0
        if writable != wasWritable { stream?.clientWritabilityChanged(isWritable: writable && (connection?.isWritable ?? false)) }
    }

    private func topUpInboundWindow() {
        guard !requestEnded, let window = inboundWindow, let connection,
            let increment = HTTP2FrontHandler.increment(window: window, target: connection.targetWindow)
        else { return }
        inboundWindow = window + increment
        connection.codec.writeWindowUpdate(stream: id, increment: increment)
    }

    // MARK: ProxyClient

    var eventLoop: any EventLoop { connection!.context!.eventLoop }

    var isWritable: Bool { (connection?.isWritable ?? false) && (outboundWindow ?? 1) > 0 }

    func sendResponseHead(_ head: ProxyResponseHead, extras: ResponseHeadExtras) {
        pendingHead = (head, extras)
    }

    func sendResponseBody(_ chunk: ByteBuffer) {
        guard chunk.readableBytes > 0 else { return }
        writePending(endStream: false)
        heldChunk = chunk
    }

    func flushResponse() {
        writePending(endStream: false)
        connection?.scheduleFlush()
    }

    func sendResponseEnd(close: Bool) {
        guard !responseEnded, let connection else { return }
        responseEnded = true
        // Answered before the request ended (its HEADERS had no END_STREAM yet, or a body is arriving):
        // once the response is out, and if the request still has not ended, the rest is refused with
        // RST_STREAM(NO_ERROR) (RFC 9113 §8.1). Not before: the codec drops a reset stream's queued DATA.
        let sent: EventLoopPromise<Void>? = requestEnded ? nil : connection.context?.eventLoop.makePromise()
        if let pending = pendingHead, heldChunk == nil {
            pendingHead = nil
            connection.codec.writeResponseHead(pending.head, extras: pending.extras, stream: id, endStream: true, promise: sent)
        } else if heldChunk != nil {
            writePending(endStream: true, promise: sent)
        } else {
            connection.codec.writeData(ByteBuffer(), stream: id, endStream: true, promise: sent)
        }
        connection.scheduleFlush()
        sent?.futureResult.assumeIsolated().whenSuccess { [self] in
            guard !self.requestEnded, !self.isClosed, let connection = self.connection else { return }
            connection.codec.writeReset(stream: self.id, code: .noError)
            connection.scheduleFlush()
        }
    }

    func setRequestBodyPaused(_ paused: Bool) {
        guard paused != bodyPaused else { return }
        bodyPaused = paused
        if !paused {
            topUpInboundWindow()
            connection?.flushIfNeeded()
        }
    }

    func responseDeadlineSet(_ deadline: NIODeadline) {
        connection?.responseDeadlineSet(deadline)
    }

    /// The response deadline and the request body's (see ``bodyDeadline``): times out what is overdue and
    /// returns the earliest deadline still to watch.
    func checkResponseDeadline(now: NIODeadline) -> NIODeadline? {
        let response = stream?.checkResponseDeadline(now: now)
        guard let body = bodyDeadline, !requestEnded, !isClosed else { return response }
        if bodyPaused {
            // The proxy withholds window updates (its backend is slow to take the body): not the client's stall.
            let later = now + bodyReadTimeout
            bodyDeadline = later
            return min(response ?? later, later)
        }
        if now < body { return min(response ?? body, body) }
        bodyDeadline = nil
        stream?.requestBodyTimedOut(after: bodyReadTimeout)
        return response
    }

    func abortResponse() {
        guard !isClosed else { return }
        responseEnded = true
        guard let connection else { return }
        connection.codec.writeReset(stream: id, code: .internalError)
        connection.flushIfNeeded()
    }

    // An HTTP/2 request never asks to switch protocols (``HTTP1HeadInfo/upgrade`` stays nil): no tunnel
    // starts on a stream, and should one, the stream is reset.
    func startTunnel() { abortResponse() }

    func sendTunnelBytes(_ bytes: ByteBuffer) {}

    func closeTunnel() { abortResponse() }

    /// Writes what is held: the headers, then the held chunk (the last one with `endStream`).
    private func writePending(endStream: Bool, promise: EventLoopPromise<Void>? = nil) {
        guard let connection else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if let pending = pendingHead {
            pendingHead = nil
            connection.codec.writeResponseHead(pending.head, extras: pending.extras, stream: id, endStream: false, promise: nil)
        }
        if let chunk = heldChunk {
            heldChunk = nil
            connection.codec.writeData(chunk, stream: id, endStream: endStream, promise: promise)
        } else {
            promise?.succeed()
        }
    }
}

@available(*, unavailable)
extension HTTP2FrontHandler: Sendable {}

@available(*, unavailable)
extension HTTP2FrontStream: Sendable {}

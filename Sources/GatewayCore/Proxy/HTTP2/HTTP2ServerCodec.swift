import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// The server side of an HTTP/2 connection (RFC 9113): framing, HPACK, stream states, flow control,
/// SETTINGS, PING, GOAWAY and the limits that keep a client from exhausting the server.
///
/// It reads bytes and tells its ``HTTP2StreamHandler`` what arrives for streams (a request's decoded
/// header list, DATA, a reset, a stream closed, windows changed); the handler writes responses through
/// its `write…` methods, which encode straight into the connection's output buffer, and calls
/// ``flush()``. Calls, not frames passed along the pipeline: no frame value is boxed, no event cast.
/// Everything that belongs to the connection is answered here. It is the front's replacement for
/// `NIOHTTP2Handler`, which spends most of an HTTP/2 request's CPU in its general state machine and HPACK
/// encoder; this one does what a server in front of HTTP/1.1 backends needs:
///
/// - Frames written between two flushes are gathered into one buffer (one write, one TLS record); a
///   DATA payload of ``passThroughBytes`` or more goes down as it is, after the gathered bytes.
/// - Responses are encoded by ``HPACKFieldEncoder`` (static table, no dynamic table, no Huffman);
///   requests are decoded by NIO's `HPACKDecoder` with a dynamic table of the default 4,096 bytes.
/// - DATA is sent within the client's connection and stream windows; what does not fit waits, per
///   stream, for WINDOW_UPDATE, and the stream is told its window is empty (the front stops reading its
///   backend). The front tops up the receive windows (it sees the window events).
/// - A request body must match its `content-length` (RFC 9113 §8.1.1): otherwise the stream is reset,
///   so a body is never forwarded past the length the request declared.
/// - Limits: concurrent streams (REFUSED_STREAM past them), header list size (a block up to twice the
///   limit is decoded and answered 431 by the front; past that the connection ends, since HPACK cannot
///   skip a block), frame size, CONTINUATION length, and floods: RST_STREAM (rapid reset), empty DATA,
///   and PING or SETTINGS while the client does not read its answers. A flood ends the connection with
///   GOAWAY(ENHANCE_YOUR_CALM).
/// - A stream closed by our own write, and a send window reopened, are reported after the flush that
///   sends the frames, never from inside a write.
final class HTTP2ServerCodec: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never

    /// What the server announces and enforces.
    struct Settings {
        var maxConcurrentStreams: Int = 100
        var maxHeaderListSize: Int = 32 * 1024
        /// Every stream's receive window, and the connection's (raised from 65,535 at the start).
        var initialWindowSize: Int = 1 << 20
        /// RST_STREAM frames a client may send in ``resetWindow`` (rapid-reset protection).
        var maxResetsPerWindow: Int = 200
        var resetWindow: TimeAmount = .seconds(10)
    }

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// Frames up to this size are accepted (the protocol's default; the server does not announce more).
    static let maxFrameSize = 16_384
    /// A DATA payload this large or larger is passed down as it is instead of copied into the gathered
    /// buffer.
    static let passThroughBytes = 4096
    /// Empty DATA frames without END_STREAM in a row that end the connection.
    static let maxEmptyDataFrames = 100
    /// Connection-level replies (PING and SETTINGS acknowledgements) queued while the client does not
    /// read that end the connection.
    static let maxUnreadReplies = 10_000

    private struct Stream {
        var inboundWindow: Int
        var outboundWindow: Int
        var remoteClosed: Bool
        var localClosed = false
        /// What is left of the request's declared `content-length`.
        var remainingLength: Int?
        /// DATA waiting for window.
        var queued: CircularBuffer<QueuedData>?
    }

    private struct QueuedData {
        var buffer: ByteBuffer
        var endStream: Bool
        var promise: EventLoopPromise<Void>?
    }

    /// A header block being continued by CONTINUATION frames.
    private struct PartialBlock {
        var streamID: UInt32
        var endStream: Bool
        var fragment: ByteBuffer
        /// Set when the stream is to be reset once its block is decoded.
        var refuse: HTTP2ErrorCode?
    }

    private enum State {
        case awaitingPreface
        case awaitingSettings
        case open
        case closed
    }

    /// What is reported after a flush.
    private enum Deferred {
        case closed(UInt32)
        case sendWindow(UInt32, Int)
    }

    /// The connection's stream handler; the pair reference each other until the handler is removed.
    var handler: (any HTTP2StreamHandler)?
    private let settings: Settings
    private var state = State.awaitingPreface
    private var context: ChannelHandlerContext?
    private var pending: ByteBuffer?
    private var decoder: HPACKDecoder
    private var streams = StreamTable<UInt32, Stream>()
    /// Streams with DATA waiting for window, in the order they began to wait.
    private var waiting: [UInt32] = []
    private var lastClientStreamID: UInt32 = 0
    private var partialBlock: PartialBlock?
    private var connectionInboundWindow = 65_535
    private var connectionOutboundWindow = 65_535
    private var peerInitialWindow = 65_535
    private var peerMaxFrameSize = 16_384
    private var goAwaySent = false
    private var emptyDataFrames = 0
    private var resetCount = 0
    private var resetWindowStart = NIODeadline.uptimeNanoseconds(0)
    private var unreadReplies = 0

    /// Frames written since the last flush, gathered.
    private var out: ByteBuffer
    /// Whether `out` was handed down and must be cleared before it is written again.
    private var outHandedOff = false
    private var outPromise: EventLoopPromise<Void>?
    /// Whether writes were passed down since the last flush (a large DATA payload goes down at once).
    private var wroteThrough = false
    /// Reports for the handler, delivered after the next flush.
    private var deferredEvents: [Deferred] = []

    init(settings: Settings, allocator: ByteBufferAllocator) {
        self.settings = settings
        // Blocks up to twice the announced limit are decoded (and refused with 431 above); past that the
        // decoder throws and the connection ends.
        self.decoder = HPACKDecoder(
            allocator: allocator, maxDynamicTableSize: HPACKDecoder.maxDynamicTableSize,
            maxHeaderListSize: 2 * settings.maxHeaderListSize + 4096)
        self.out = allocator.buffer(capacity: 1024)
    }

    // MARK: - Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The server's connection preface: its SETTINGS, then the connection window raised to match the
        // streams'.
        let entries: [(UInt16, Int)] = [
            (0x3, settings.maxConcurrentStreams), (0x4, settings.initialWindowSize), (0x6, settings.maxHeaderListSize),
        ]
        prepareOut()
        writeFrameHeader(length: 6 * entries.count, type: 0x4, flags: 0, stream: 0)
        for (id, value) in entries {
            out.writeInteger(id)
            out.writeInteger(UInt32(value))
        }
        let raise = settings.initialWindowSize - connectionInboundWindow
        if raise > 0 {
            writeWindowUpdateFrame(stream: 0, increment: raise)
            connectionInboundWindow += raise
        }
        flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failQueuedData()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        failQueuedData()
        context.fireChannelInactive()
        handler = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { unreadReplies = 0 }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .closed else { return }  // lingering after GOAWAY: dropped
        var buffer = unwrapInboundIn(data)
        if pending != nil {
            pending!.writeBuffer(&buffer)
            buffer = pending!
            pending = nil
        }
        if state == .awaitingPreface {
            let n = min(buffer.readableBytes, Self.preface.count)
            guard buffer.readableBytesView.prefix(n).elementsEqual(Self.preface.prefix(n)) else {
                connectionError(.protocolError, context: context)
                return
            }
            guard n == Self.preface.count else {
                pending = buffer
                return
            }
            buffer.moveReaderIndex(forwardBy: n)
            state = .awaitingSettings
        }
        while state != .closed, buffer.readableBytes >= 9 {
            let header = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self)!
            let length = Int(header >> 8)
            guard length <= Self.maxFrameSize else {
                connectionError(.frameSizeError, context: context)
                return
            }
            guard buffer.readableBytes >= 9 + length else { break }
            let type = UInt8(truncatingIfNeeded: header)
            let flags = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)!
            let streamID = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt32.self)! & 0x7fff_ffff
            buffer.moveReaderIndex(forwardBy: 9)
            let payload = buffer.readSlice(length: length)!
            handleFrame(type: type, flags: flags, streamID: streamID, payload: payload, context: context)
        }
        if state != .closed && buffer.readableBytes > 0 { pending = buffer }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        // What the frames read made this codec write (acknowledgements, DATA let out by WINDOW_UPDATE).
        if needsFlush { flush() }
    }

    private func handleFrame(type: UInt8, flags: UInt8, streamID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        if let partial = partialBlock {
            guard type == 0x9, streamID == partial.streamID else {
                connectionError(.protocolError, context: context)
                return
            }
            continueBlock(flags: flags, payload: payload, context: context)
            return
        }
        if state == .awaitingSettings {
            guard type == 0x4, flags & 0x1 == 0 else {
                connectionError(.protocolError, context: context)
                return
            }
            state = .open
        }
        switch type {
        case 0x0: receiveData(flags: flags, streamID: streamID, payload: payload, context: context)
        case 0x1: receiveHeaders(flags: flags, streamID: streamID, payload: payload, context: context)
        case 0x2:
            guard streamID != 0 else { return connectionError(.protocolError, context: context) }
            guard payload.readableBytes == 5 else { return streamError(streamID, .frameSizeError) }
        case 0x3: receiveReset(streamID: streamID, payload: payload, context: context)
        case 0x4: receiveSettings(flags: flags, streamID: streamID, payload: payload, context: context)
        case 0x6: receivePing(flags: flags, streamID: streamID, payload: payload, context: context)
        case 0x7:
            guard streamID == 0 else { return connectionError(.protocolError, context: context) }
        case 0x8: receiveWindowUpdate(streamID: streamID, payload: payload, context: context)
        case 0x5, 0x9:
            // PUSH_PROMISE from a client, or CONTINUATION without a header block to continue.
            connectionError(.protocolError, context: context)
        default:
            break  // unknown frame types are ignored (RFC 9113 §4.1)
        }
    }

    /// The payload without its padding (PADDED flag); nil when the padding is longer than the payload.
    private func unpadded(_ payload: ByteBuffer, flags: UInt8) -> ByteBuffer? {
        guard flags & 0x8 != 0 else { return payload }
        var payload = payload
        guard let padding = payload.readInteger(as: UInt8.self), Int(padding) <= payload.readableBytes else { return nil }
        return payload.readSlice(length: payload.readableBytes - Int(padding))
    }

    private func receiveData(flags: UInt8, streamID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard streamID != 0 else { return connectionError(.protocolError, context: context) }
        let length = payload.readableBytes
        guard length <= connectionInboundWindow else { return connectionError(.flowControlError, context: context) }
        connectionInboundWindow -= length
        guard let data = unpadded(payload, flags: flags) else { return connectionError(.protocolError, context: context) }
        let endStream = flags & 0x1 != 0
        if data.readableBytes == 0 && !endStream {
            emptyDataFrames += 1
            if emptyDataFrames > Self.maxEmptyDataFrames { return connectionError(.enhanceYourCalm, context: context) }
        } else {
            emptyDataFrames = 0
        }
        if length > 0 { handler?.windowChanged(stream: .rootStream, inbound: connectionInboundWindow, outbound: nil) }
        guard var stream = streams[streamID] else {
            // A stream reset or finished a moment ago: its DATA may still be on the way, and is dropped.
            if streamID > lastClientStreamID { connectionError(.protocolError, context: context) }
            return
        }
        guard !stream.remoteClosed else { return streamError(streamID, .streamClosed) }
        guard length <= stream.inboundWindow else { return streamError(streamID, .flowControlError) }
        stream.inboundWindow -= length
        if let remaining = stream.remainingLength {
            let left = remaining - data.readableBytes
            guard left >= 0, !endStream || left == 0 else { return streamError(streamID, .protocolError) }
            stream.remainingLength = left
        }
        stream.remoteClosed = endStream
        streams[streamID] = stream
        handler?.receivedData(data, stream: Self.id(streamID), endStream: endStream)
        if endStream {
            closeIfDone(streamID, now: true)
        } else if length > 0, let window = streams[streamID]?.inboundWindow {
            // Read again: the handler may have topped the window up while it took the data.
            handler?.windowChanged(stream: Self.id(streamID), inbound: window, outbound: nil)
        }
    }

    private func receiveHeaders(flags: UInt8, streamID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard streamID != 0, streamID & 1 == 1 else { return connectionError(.protocolError, context: context) }
        guard var fragment = unpadded(payload, flags: flags) else { return connectionError(.protocolError, context: context) }
        var refuse: HTTP2ErrorCode?
        if flags & 0x20 != 0 {
            guard let dependency = fragment.readInteger(as: UInt32.self), fragment.readInteger(as: UInt8.self) != nil else {
                return connectionError(.frameSizeError, context: context)
            }
            // A stream depending on itself is a stream error, once the block is decoded.
            refuse = dependency & 0x7fff_ffff == streamID ? .protocolError : nil
        }
        partialBlock = PartialBlock(streamID: streamID, endStream: flags & 0x1 != 0, fragment: fragment, refuse: refuse)
        if flags & 0x4 != 0 { finishBlock(context: context) }
    }

    private func continueBlock(flags: UInt8, payload: ByteBuffer, context: ChannelHandlerContext) {
        var payload = payload
        partialBlock!.fragment.writeBuffer(&payload)
        // CONTINUATION flood protection: a block past what the decoder would take is not collected.
        guard partialBlock!.fragment.readableBytes <= 2 * settings.maxHeaderListSize + 16_384 else {
            return connectionError(.enhanceYourCalm, context: context)
        }
        if flags & 0x4 != 0 { finishBlock(context: context) }
    }

    /// Decodes a complete header block: a new stream's request, or the trailers of an open one.
    private func finishBlock(context: ChannelHandlerContext) {
        guard var block = partialBlock else { return }
        let refuse = block.refuse
        partialBlock = nil
        let streamID = block.streamID
        let headers: HPACKHeaders
        do {
            headers = try decoder.decodeHeaders(from: &block.fragment)
        } catch {
            return connectionError(.compressionError, context: context)
        }
        if streamID <= lastClientStreamID {
            guard var stream = streams[streamID] else {
                if streamID > 0 { streamError(streamID, .streamClosed) }
                return
            }
            // Trailers: they end the request (RFC 9113 §8.1).
            guard block.endStream, !stream.remoteClosed, refuse == nil else { return streamError(streamID, refuse ?? .protocolError) }
            if let remaining = stream.remainingLength, remaining != 0 { return streamError(streamID, .protocolError) }
            stream.remoteClosed = true
            streams[streamID] = stream
            handler?.receivedHeaders(headers, stream: Self.id(streamID), endStream: true)
            closeIfDone(streamID, now: true)
            return
        }
        lastClientStreamID = streamID
        if goAwaySent { return }  // past the GOAWAY's last stream: ignored (RFC 9113 §6.8)
        if let refuse { return streamError(streamID, refuse) }
        guard streams.count < settings.maxConcurrentStreams else { return streamError(streamID, .refusedStream) }
        let declared = Self.declaredLength(headers)
        // A request that ends with its headers but declares a body is malformed (RFC 9113 §8.1.1).
        if block.endStream, let declared, declared != 0 { return streamError(streamID, .protocolError) }
        streams[streamID] = Stream(
            inboundWindow: settings.initialWindowSize, outboundWindow: peerInitialWindow, remoteClosed: block.endStream,
            remainingLength: declared)
        handler?.receivedHeaders(headers, stream: Self.id(streamID), endStream: block.endStream)
        if block.endStream { closeIfDone(streamID, now: true) }
    }

    /// The request's `content-length`, when it has exactly one that is a number (anything else is the
    /// front's to refuse with 400).
    static func declaredLength(_ headers: HPACKHeaders) -> Int? {
        var length: Int?
        for (name, value, _) in headers where name.utf8.count == 14 && name == "content-length" {
            guard length == nil, let n = Int(value), n >= 0 else { return nil }
            length = n
        }
        return length
    }

    private func receiveReset(streamID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard payload.readableBytes == 4 else { return connectionError(.frameSizeError, context: context) }
        guard streamID != 0, streamID <= lastClientStreamID else { return connectionError(.protocolError, context: context) }
        // Rapid-reset protection (CVE-2023-44487): resets are counted in fixed windows.
        let now = NIODeadline.now()
        if now - resetWindowStart > settings.resetWindow {
            resetWindowStart = now
            resetCount = 0
        }
        resetCount += 1
        if resetCount > settings.maxResetsPerWindow { return connectionError(.enhanceYourCalm, context: context) }
        guard streams[streamID] != nil else { return }
        removeStream(streamID)
        handler?.streamClosed(Self.id(streamID))
    }

    private func receiveSettings(flags: UInt8, streamID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard streamID == 0 else { return connectionError(.protocolError, context: context) }
        if flags & 0x1 != 0 {
            guard payload.readableBytes == 0 else { return connectionError(.frameSizeError, context: context) }
            return
        }
        guard payload.readableBytes % 6 == 0 else { return connectionError(.frameSizeError, context: context) }
        var payload = payload
        var windowDelta = 0
        while let id = payload.readInteger(as: UInt16.self), let value = payload.readInteger(as: UInt32.self) {
            switch id {
            case 0x2:  // ENABLE_PUSH
                guard value <= 1 else { return connectionError(.protocolError, context: context) }
            case 0x4:  // INITIAL_WINDOW_SIZE: applies to every open stream's send window (RFC 9113 §6.9.2)
                guard value <= 0x7fff_ffff else { return connectionError(.flowControlError, context: context) }
                windowDelta += Int(value) - peerInitialWindow
                peerInitialWindow = Int(value)
            case 0x5:  // MAX_FRAME_SIZE
                guard value >= 16_384, value <= 16_777_215 else { return connectionError(.protocolError, context: context) }
                peerMaxFrameSize = Int(value)
            default:
                break  // HEADER_TABLE_SIZE (the encoder keeps no dynamic table), the rest advisory or unknown
            }
        }
        guard countReply(context: context) else { return }
        prepareOut()
        writeFrameHeader(length: 0, type: 0x4, flags: 0x1, stream: 0)
        // After the acknowledgement: a client counts a larger window only once its SETTINGS are
        // acknowledged, so DATA the new window lets out must not come before the ACK.
        if windowDelta != 0 { applyInitialWindowDelta(windowDelta, context: context) }
    }

    private func applyInitialWindowDelta(_ delta: Int, context: ChannelHandlerContext) {
        for id in streams.keys {
            let window = streams[id]!.outboundWindow + delta
            guard window <= 0x7fff_ffff else { return connectionError(.flowControlError, context: context) }
            streams[id]!.outboundWindow = window
            deferredEvents.append(.sendWindow(id, max(window, 0)))
        }
        if delta > 0 { sendWaitingData() }
    }

    private func receivePing(flags: UInt8, streamID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard payload.readableBytes == 8 else { return connectionError(.frameSizeError, context: context) }
        guard streamID == 0 else { return connectionError(.protocolError, context: context) }
        guard flags & 0x1 == 0 else { return }
        guard countReply(context: context) else { return }
        var payload = payload
        prepareOut()
        writeFrameHeader(length: 8, type: 0x6, flags: 0x1, stream: 0)
        out.writeBuffer(&payload)
    }

    /// PING and SETTINGS flood protection: replies to a client that is not reading them are counted.
    /// False when the connection ended for it.
    private func countReply(context: ChannelHandlerContext) -> Bool {
        guard !context.channel.isWritable else { return true }
        unreadReplies += 1
        guard unreadReplies <= Self.maxUnreadReplies else {
            connectionError(.enhanceYourCalm, context: context)
            return false
        }
        return true
    }

    private func receiveWindowUpdate(streamID: UInt32, payload: ByteBuffer, context: ChannelHandlerContext) {
        guard payload.readableBytes == 4 else { return connectionError(.frameSizeError, context: context) }
        let increment = Int(payload.getInteger(at: payload.readerIndex, as: UInt32.self)! & 0x7fff_ffff)
        if streamID == 0 {
            guard increment > 0 else { return connectionError(.protocolError, context: context) }
            connectionOutboundWindow += increment
            guard connectionOutboundWindow <= 0x7fff_ffff else { return connectionError(.flowControlError, context: context) }
            sendWaitingData()
            return
        }
        guard var stream = streams[streamID] else {
            if streamID > lastClientStreamID { connectionError(.protocolError, context: context) }
            return
        }
        guard increment > 0 else { return streamError(streamID, .protocolError) }
        stream.outboundWindow += increment
        guard stream.outboundWindow <= 0x7fff_ffff else { return streamError(streamID, .flowControlError) }
        streams[streamID] = stream
        if stream.queued != nil { sendWaitingData() }
        if let window = streams[streamID]?.outboundWindow {
            handler?.windowChanged(stream: Self.id(streamID), inbound: nil, outbound: max(window, 0))
        }
    }

    // MARK: - Writing

    /// A response head as a HEADERS frame (with CONTINUATION frames if the block is larger than the
    /// client's frame size).
    func writeResponseHead(
        _ head: ProxyResponseHead, extras: ResponseHeadExtras, stream: HTTP2StreamID, endStream: Bool, promise: EventLoopPromise<Void>?
    ) {
        let id = UInt32(Int32(stream))
        guard state != .closed, let current = streams[id], !current.localClosed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        prepareOut()
        let start = out.writerIndex
        let length = HPACKFieldEncoder.writeHeadersFrame(head, extras: extras, stream: id, endStream: endStream, into: &out)
        if length > peerMaxFrameSize { splitHeaders(at: start, length: length, stream: id, endStream: endStream) }
        attach(promise)
        if endStream { endLocally(id) }
    }

    /// DATA within the client's windows; what does not fit waits for WINDOW_UPDATE.
    func writeData(_ data: ByteBuffer, stream: HTTP2StreamID, endStream: Bool, promise: EventLoopPromise<Void>?) {
        let id = UInt32(Int32(stream))
        guard state != .closed, let current = streams[id], !current.localClosed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        sendData(QueuedData(buffer: data, endStream: endStream, promise: promise), stream: id)
    }

    /// RST_STREAM for a stream still open; the handler hears it closed after the flush.
    func writeReset(stream: HTTP2StreamID, code: HTTP2ErrorCode) {
        let id = UInt32(Int32(stream))
        guard state != .closed, streams[id] != nil else { return }
        streamError(id, code)
    }

    /// WINDOW_UPDATE: the handler gives the client room to send more.
    func writeWindowUpdate(stream: HTTP2StreamID, increment: Int) {
        let id = UInt32(Int32(stream))
        guard state != .closed, increment > 0 else { return }
        if id == 0 {
            connectionInboundWindow += increment
        } else if let current = streams[id], !current.remoteClosed {
            streams[id]!.inboundWindow += increment
        } else {
            return
        }
        writeWindowUpdateFrame(stream: id, increment: increment)
    }

    /// GOAWAY: streams after `lastStreamID` are ignored from now on.
    func writeGoAway(lastStreamID: HTTP2StreamID, code: HTTP2ErrorCode) {
        guard state != .closed else { return }
        goAwaySent = true
        prepareOut()
        writeFrameHeader(length: 8, type: 0x7, flags: 0, stream: 0)
        out.writeInteger(UInt32(Int32(lastStreamID)))
        out.writeInteger(UInt32(code.networkCode))
    }

    /// Whether anything was written since the last flush, or waits to be reported after one.
    var needsFlush: Bool {
        out.readableBytes > 0 && !outHandedOff || wroteThrough || !deferredEvents.isEmpty
    }

    /// Writes what was gathered and flushes; then tells the handler what the flush concluded (streams
    /// closed by their last frame, send windows reopened).
    func flush() {
        guard let context else { return }
        passGatheredDown(context: context)
        wroteThrough = false
        context.flush()
        guard !deferredEvents.isEmpty else { return }
        let events = deferredEvents
        deferredEvents = []
        for event in events {
            switch event {
            case .closed(let id): handler?.streamClosed(Self.id(id))
            case .sendWindow(let id, let window): handler?.windowChanged(stream: Self.id(id), inbound: nil, outbound: window)
            }
        }
    }

    /// Makes `out` ready for more bytes: a buffer handed down is cleared first (by then the socket has
    /// usually written it, so its storage is reused).
    @inline(__always)
    private func prepareOut() {
        if outHandedOff {
            outHandedOff = false
            out.clear()
        }
    }

    private func attach(_ promise: EventLoopPromise<Void>?) {
        guard let promise else { return }
        if let outPromise {
            outPromise.futureResult.cascade(to: promise)
        } else {
            outPromise = promise
        }
    }

    /// Passes on what was gathered, then `buffer` as a write of its own.
    private func writeThrough(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        passGatheredDown(context: context)
        context.write(NIOAny(IOData.byteBuffer(buffer)), promise: promise)
        wroteThrough = true
    }

    /// Writes the gathered frames down as one buffer (not flushed), with the promises attached to them.
    private func passGatheredDown(context: ChannelHandlerContext) {
        guard out.readableBytes > 0 && !outHandedOff else { return }
        outHandedOff = true
        let promise = outPromise
        outPromise = nil
        context.write(NIOAny(IOData.byteBuffer(out)), promise: promise)
    }

    @inline(__always)
    private func writeFrameHeader(length: Int, type: UInt8, flags: UInt8, stream: UInt32) {
        out.writeInteger(UInt32(length) << 8 | UInt32(type))
        out.writeInteger(flags)
        out.writeInteger(stream)
    }

    private func writeWindowUpdateFrame(stream: UInt32, increment: Int) {
        prepareOut()
        writeFrameHeader(length: 4, type: 0x8, flags: 0, stream: stream)
        out.writeInteger(UInt32(increment))
    }

    /// Splits the HEADERS frame at `start`, whose block of `length` bytes is larger than the client's
    /// frame size, into HEADERS and CONTINUATION frames.
    private func splitHeaders(at start: Int, length: Int, stream: UInt32, endStream: Bool) {
        var block = out.getSlice(at: start + 9, length: length)!
        out.moveWriterIndex(to: start)
        var type: UInt8 = 0x1
        var flags: UInt8 = endStream ? 0x1 : 0
        while block.readableBytes > 0 {
            var piece = block.readSlice(length: min(block.readableBytes, peerMaxFrameSize))!
            writeFrameHeader(length: piece.readableBytes, type: type, flags: flags | (block.readableBytes == 0 ? 0x4 : 0), stream: stream)
            out.writeBuffer(&piece)
            type = 0x9
            flags = 0
        }
    }

    /// Sends what the windows allow of `data`; the rest waits for WINDOW_UPDATE.
    private func sendData(_ data: QueuedData, stream id: UInt32) {
        if streams[id]!.queued != nil {
            streams[id]!.queued!.append(data)
            return
        }
        var data = data
        if sendAllowed(&data, stream: id) { return }
        streams[id]!.queued = CircularBuffer(initialCapacity: 4)
        streams[id]!.queued!.append(data)
        waiting.append(id)
        deferredEvents.append(.sendWindow(id, 0))  // not from inside the handler's write
    }

    /// Writes as much of `data` as the windows allow: true when all of it (and its END_STREAM) went.
    private func sendAllowed(_ data: inout QueuedData, stream id: UInt32) -> Bool {
        while true {
            let window = min(connectionOutboundWindow, streams[id]!.outboundWindow)
            let size = data.buffer.readableBytes
            if size == 0 {
                guard data.endStream else {
                    data.promise?.succeed()
                    return true
                }
                prepareOut()
                writeFrameHeader(length: 0, type: 0x0, flags: 0x1, stream: id)
                attach(data.promise)
                endLocally(id)
                return true
            }
            guard window > 0 else { return false }
            let n = min(size, window, peerMaxFrameSize)
            let last = n == size
            var piece = last ? data.buffer : data.buffer.readSlice(length: n)!
            connectionOutboundWindow -= n
            streams[id]!.outboundWindow -= n
            prepareOut()
            writeFrameHeader(length: n, type: 0x0, flags: last && data.endStream ? 0x1 : 0, stream: id)
            if n >= Self.passThroughBytes {
                writeThrough(piece, promise: last ? data.promise : nil)
            } else {
                out.writeBuffer(&piece)
                if last { attach(data.promise) }
            }
            if last {
                if data.endStream { endLocally(id) }
                return true
            }
        }
    }

    private func endLocally(_ id: UInt32) {
        streams[id]?.localClosed = true
        closeIfDone(id, now: false)
    }

    /// Sends what waits for window, stream by stream in the order they began to wait.
    private func sendWaitingData() {
        var index = 0
        while index < waiting.count, connectionOutboundWindow > 0 {
            let id = waiting[index]
            guard streams[id]?.queued != nil else {
                waiting.remove(at: index)
                continue
            }
            // Taken off the queue while it is sent: a stream that ends with it fails only what is left.
            while streams[id]?.queued?.isEmpty == false {
                var next = streams[id]!.queued!.removeFirst()
                if sendAllowed(&next, stream: id) { continue }
                streams[id]?.queued?.prepend(next)
                break
            }
            if let stream = streams[id], let queued = stream.queued, !queued.isEmpty {
                index += 1
                continue
            }
            if let window = streams[id]?.outboundWindow {
                // Its window had been reported empty: the stream may send again.
                streams[id]!.queued = nil
                deferredEvents.append(.sendWindow(id, max(window, 0)))
            }
            waiting.remove(at: index)
        }
    }

    // MARK: - Streams

    static func id(_ id: UInt32) -> HTTP2StreamID { HTTP2StreamID(Int32(bitPattern: id)) }

    /// Removes a stream once both sides have ended. Not `now`: the close came from a write, and is
    /// reported after the flush that sends the stream's last frame.
    private func closeIfDone(_ id: UInt32, now: Bool) {
        guard let stream = streams[id], stream.remoteClosed, stream.localClosed else { return }
        removeStream(id)
        if now {
            handler?.streamClosed(Self.id(id))
        } else {
            deferredEvents.append(.closed(id))
        }
    }

    private func removeStream(_ id: UInt32) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        if let queued = stream.queued {
            for data in queued { data.promise?.fail(ChannelError.ioOnClosedChannel) }
        }
    }

    private func failQueuedData() {
        let open = streams
        streams = StreamTable()
        waiting = []
        for stream in open.values {
            for data in stream.queued ?? [] { data.promise?.fail(ChannelError.ioOnClosedChannel) }
        }
    }

    /// Resets one stream (RFC 9113 §5.4.2); the connection goes on.
    private func streamError(_ id: UInt32, _ code: HTTP2ErrorCode) {
        prepareOut()
        writeFrameHeader(length: 4, type: 0x3, flags: 0, stream: id)
        out.writeInteger(UInt32(code.networkCode))
        guard streams[id] != nil else { return }
        removeStream(id)
        deferredEvents.append(.closed(id))
    }

    /// Ends the connection (RFC 9113 §5.4.1): GOAWAY naming the last stream begun, then a close. The open
    /// streams end with it.
    private func connectionError(_ code: HTTP2ErrorCode, context: ChannelHandlerContext) {
        guard state != .closed else { return }
        let wasOpen = state != .awaitingPreface
        state = .closed
        pending = nil
        if wasOpen {
            prepareOut()
            writeFrameHeader(length: 8, type: 0x7, flags: 0, stream: 0)
            out.writeInteger(lastClientStreamID)
            out.writeInteger(UInt32(code.networkCode))
        }
        flush()
        // A lingering close: the output side closes now, so the client reads the GOAWAY and EOF; what it
        // still sends is read and dropped until it closes too (or for 2 s). Closing at once with its bytes
        // unread would make the kernel answer with a TCP reset, which can destroy the GOAWAY unread.
        let outputClosed = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: outputClosed)
        outputClosed.futureResult.assumeIsolated().whenFailure { _ in context.close(promise: nil) }
        let channel = context.channel
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
    }
}

/// What a connection's streams are told by ``HTTP2ServerCodec``, on the channel's event loop.
protocol HTTP2StreamHandler: AnyObject {
    /// A request's header block (a new stream), or trailers (an open stream).
    func receivedHeaders(_ fields: HPACKHeaders, stream: HTTP2StreamID, endStream: Bool)
    func receivedData(_ data: ByteBuffer, stream: HTTP2StreamID, endStream: Bool)
    /// The stream is over: both sides ended, or it was reset by either.
    func streamClosed(_ stream: HTTP2StreamID)
    /// The connection's (`.rootStream`) or a stream's receive window after DATA, or a stream's send window
    /// (0: full; DATA written now waits).
    func windowChanged(stream: HTTP2StreamID, inbound: Int?, outbound: Int?)
}

@available(*, unavailable)
extension HTTP2ServerCodec: Sendable {}

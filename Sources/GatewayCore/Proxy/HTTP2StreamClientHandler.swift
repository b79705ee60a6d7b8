import NIOCore
import NIOHTTP1
import Synchronization

/// The client side of one HTTP/2 stream served on its own child channel (after
/// `HTTP2FramePayloadToHTTP1ServerCodec`): feeds the stream's request to a ``ProxyStream`` and writes
/// its response back as HTTP/1-style parts.
final class HTTP2StreamClientHandler: ChannelDuplexHandler, ProxyClient {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let configuration: ProxyStreamConfiguration
    private var context: ChannelHandlerContext?
    private var stream: ProxyStream<HTTP2StreamClientHandler>?
    private var bodyPaused = false
    private var readPending = false

    init(configuration: ProxyStreamConfiguration) {
        self.configuration = configuration
    }

    var eventLoop: any EventLoop { context!.eventLoop }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func sendResponseHead(_ head: HTTPResponseHead) {
        context?.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    func sendResponseBody(_ chunk: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
    }

    func sendResponseEnd(close: Bool) {
        context?.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func flushResponse() { context?.flush() }

    func setRequestBodyPaused(_ paused: Bool) {
        bodyPaused = paused
        if !paused, readPending, let context {
            readPending = false
            context.read()
        }
    }

    func abortResponse() { context?.close(promise: nil) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        configuration.counters.streams.add(1, ordering: .relaxed)
        stream = ProxyStream(configuration: configuration, client: self, clientIP: FrontPipeline.clientIP(of: context.channel))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        configuration.counters.streams.subtract(1, ordering: .relaxed)
        stream?.clientClosed()
        stream = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let stream else { return }
        switch unwrapInboundIn(data) {
        case .head(var head):
            let info = HopByHop.requestInfo(stripping: &head.headers, version: head.version)
            stream.requestHead(head, info: info)
        case .body(let chunk): stream.requestBody(chunk)
        case .end: stream.requestEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        stream?.clientReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.clientClosed()
        stream = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        stream?.clientWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func read(context: ChannelHandlerContext) {
        if bodyPaused {
            readPending = true
        } else {
            context.read()
        }
    }
}

@available(*, unavailable)
extension HTTP2StreamClientHandler: Sendable {}

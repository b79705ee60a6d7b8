import NIOCore
import NIOHTTP1

/// Keeps HTTP/1.1 pipelined requests in order: while a response is in progress, the parts of the next
/// request (and any parse error behind it) are held here and handed on when that response has ended, so
/// ``ProxyServerHandler`` sees one request at a time and answers go out in request order.
///
/// Unlike NIO's `HTTPServerPipelineHandler`, it does not stop reading while a response is pending: the
/// common keep-alive client sends its next request only after the answer, so withholding `read()`
/// bought nothing and cost two `epoll_ctl` calls per request (read interest off, then on again). Reading
/// stops only once a pipelined request is actually held, which bounds what a pipelining client can
/// queue to what one read brings in.
///
/// It also answers HTTP/1 parse errors, in their turn: a JSON 400 (431 for headers past the decoder's
/// own cap) and a close, or just the close when a response has already started.
final class FrontPipeliningHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// No request in progress.
        case idle
        /// A request is arriving and its response has not ended.
        case requestAndResponsePending
        /// The response ended before the request did (an early answer): the rest of the request passes.
        case requestEndPending
        /// The request has ended; its response has not. Whatever arrives now belongs to the next request.
        case responseEndPending
    }

    private enum Held {
        case part(HTTPServerRequestPart)
        case error(any Error)
    }

    private var state = State.idle
    private var held = CircularBuffer<Held>()
    private var readPending = false
    /// Set while a hand-off of held parts is scheduled, so only one is.
    private var deliveryScheduled = false
    /// A response head has been written and its end not yet.
    private var responseInProgress = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state == .responseEndPending || !held.isEmpty {
            held.append(.part(unwrapInboundIn(data)))
            return
        }
        pass(unwrapInboundIn(data), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if state == .responseEndPending || !held.isEmpty {
            held.append(.error(error))
            return
        }
        handle(error, context: context)
    }

    func read(context: ChannelHandlerContext) {
        if held.isEmpty {
            context.read()
        } else {
            readPending = true
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head:
            responseInProgress = true
        case .body:
            break
        case .end:
            responseInProgress = false
            switch state {
            case .responseEndPending: state = .idle
            case .requestAndResponsePending: state = .requestEndPending
            case .idle, .requestEndPending: break  // a local error answer outside a request
            }
            if !held.isEmpty { scheduleDelivery(context: context) }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client is gone: requests it queued behind the last answer cannot be answered.
        held.removeAll()
        context.fireChannelInactive()
    }

    private func pass(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head:
            state = .requestAndResponsePending
        case .end:
            state = state == .requestEndPending ? .idle : .responseEndPending
        case .body:
            break
        }
        context.fireChannelRead(wrapInboundOut(part))
    }

    /// Hands held parts on from a fresh event-loop tick, not from inside the `write` of the previous
    /// response's end: the proxy handler is still finishing that response there.
    private func scheduleDelivery(context: ChannelHandlerContext) {
        guard !deliveryScheduled else { return }
        deliveryScheduled = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            handler.deliveryScheduled = false
            handler.deliverHeld(context: context)
        }
    }

    private func deliverHeld(context: ChannelHandlerContext) {
        while state != .responseEndPending, let next = held.popFirst() {
            switch next {
            case .part(let part): pass(part, context: context)
            case .error(let error): handle(error, context: context)
            }
            if !context.channel.isActive { return }
        }
        if held.isEmpty && readPending {
            readPending = false
            context.read()
        }
    }

    /// A parse error gets its answer and the close; other errors go on.
    private func handle(_ error: any Error, context: ChannelHandlerContext) {
        guard let error = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        held.removeAll()
        guard !responseInProgress else {
            context.close(promise: nil)
            return
        }
        let status: HTTPResponseStatus = error == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
        let requestID = RequestID.generate()
        let body = HTTPResponse.errorBody(status == .badRequest ? "malformed HTTP request (\(error))" : "request headers too large", requestID: requestID)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: RequestID.headerName, value: requestID)
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension FrontPipeliningHandler: Sendable {}

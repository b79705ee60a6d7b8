import NIOCore
import NIOHTTP2

/// One HTTP/2 connection (h2c, prior knowledge) to a backend, shared by the exchanges of one event loop:
/// each exchange is a stream on it.
///
/// It takes streams while it is open and below the peer's `SETTINGS_MAX_CONCURRENT_STREAMS`; after a
/// GOAWAY it takes no more and closes once its last stream has ended.
final class UpstreamH2Session {
    /// A stream asked for while the connection is still being set up.
    struct PendingStream {
        var mayRetry: Bool
        var completion: UpstreamWaiter.Completion
    }

    enum State {
        case connecting(pending: [PendingStream])
        case ready(NIOHTTP2Handler.StreamMultiplexer)
        /// GOAWAY received (or a stream could not be opened): no new streams.
        case draining
        case closed
    }

    let slot: UpstreamTargetPool
    var state: State = .connecting(pending: [])
    var channel: (any Channel)?
    /// Streams open or being opened on this connection.
    var streams = 0
    /// The peer's limit on concurrent streams; assumed until its SETTINGS say otherwise.
    var maxConcurrentStreams = 100

    init(slot: UpstreamTargetPool) {
        self.slot = slot
    }

    /// Whether a new stream may go on this connection now (or once it is connected).
    var hasRoom: Bool {
        switch state {
        case .connecting, .ready: return streams < maxConcurrentStreams
        case .draining, .closed: return false
        }
    }

    /// A stream on this connection ended.
    func streamClosed() {
        streams -= 1
        if case .draining = state, streams <= 0 { close() }
    }

    /// Takes no new streams; closes when the open ones have ended.
    func drain() {
        switch state {
        case .ready, .connecting:
            state = .draining
            if streams <= 0 { close() }
        case .draining, .closed:
            break
        }
    }

    func close() {
        channel?.close(promise: nil)
    }
}

/// Sits behind the `NIOHTTP2Handler` of an upstream HTTP/2 connection and reads the connection-level
/// frames: the peer's stream limit from SETTINGS, and GOAWAY. When the connection closes, its session
/// leaves the pool.
final class UpstreamH2SessionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    var session: UpstreamH2Session?
    weak var pool: UpstreamLoopPool?

    init(multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.multiplexer = multiplexer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        switch unwrapInboundIn(data).payload {
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .maxConcurrentStreams {
                session.maxConcurrentStreams = setting.value
            }
        case .goAway:
            session.drain()
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session {
            self.session = nil
            pool?.sessionClosed(session)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream error ends that stream only (its channel hears of it).
        if error is NIOHTTP2Errors.StreamError { return }
        // A connection error (bad frames, a protocol violation): GOAWAY went out, drop the connection.
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamH2Session: Sendable {}

@available(*, unavailable)
extension UpstreamH2SessionHandler: Sendable {}

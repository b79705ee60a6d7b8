import Metrics
import NIOCore
import NIOTLS

/// Counts the TLS handshakes a listener refuses or that fail (a client without the certificate
/// `tls.clientCaFile` asks for, one the CA did not sign, no shared protocol version or cipher, bytes that
/// are not TLS): each error before the handshake completes is one. Leaves the pipeline once the
/// handshake is done, so established connections pay nothing for it.
final class TLSHandshakeFailureCounter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let failures: Counter
    private var counted = false

    init(failures: Counter) {
        self.failures = failures
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)  // first: the ALPN handler after it waits for this event
        if case TLSUserEvent.handshakeCompleted = event {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !counted {
            counted = true  // one per connection, however many errors the failure raises
            failures.increment()
        }
        context.fireErrorCaught(error)
    }
}

@available(*, unavailable)
extension TLSHandshakeFailureCounter: Sendable {}

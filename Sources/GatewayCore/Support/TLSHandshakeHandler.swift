import NIOCore
import NIOSSL
import NIOTLS

/// Completes `done` when the TLS handshake finishes, or fails it with the handshake's error (or the
/// connection's close), then leaves the pipeline. Redis connections (``RedisConnection/connect``) and
/// `https://` upstream connections are handed out only after it.
final class TLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let done: EventLoopPromise<Void>

    init(done: EventLoopPromise<Void>) {
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            done.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}

/// Client TLS as every outbound connection of the project makes it (Redis, `https://` backends, TLS
/// nodes, health checks): TLS 1.2 or later, the server always verified.
enum ClientTLS {
    /// Full verification against the CAs in `caFile` (PEM), else the system's trust store.
    static func configuration(caFile: String?) throws(ClientTLSError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let caFile {
            let authorities: [NIOSSLCertificate]
            do {
                authorities = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw ClientTLSError(file: caFile, reason: "\(error)")
            }
            guard !authorities.isEmpty else { throw ClientTLSError(file: caFile, reason: "it holds no PEM certificate") }
            configuration.trustRoots = .certificates(authorities)
        }
        return configuration
    }

    /// The handler that starts a connection's TLS to `host`: a DNS name is sent as SNI and must be on the
    /// certificate; an IP address must be among the certificate's IP entries.
    static func handler(context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
    }
}

/// A CA file that cannot be used.
public struct ClientTLSError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var reason: String

    public var description: String { "cannot read the CA file \(file): \(reason)" }
}

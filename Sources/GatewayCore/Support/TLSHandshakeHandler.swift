import NIOCore
import NIOSSL
import NIOTLS

/// Completes `done` when the TLS handshake finishes, or fails it with the handshake's error (or the
/// connection's close), then leaves the pipeline. Redis connections (``RedisConnection/connect``) and
/// TLS upstream connections are handed out only after it.
final class TLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let done: EventLoopPromise<Void>
    /// The ALPN protocol the server must have chosen (nil: any, or none).
    private let expectedProtocol: String?

    init(done: EventLoopPromise<Void>, expectedProtocol: String? = nil) {
        self.done = done
        self.expectedProtocol = expectedProtocol
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            if let expectedProtocol, negotiated != expectedProtocol {
                // A server that does not speak it would take HTTP/2's preface as a broken request.
                done.fail(ALPNMismatch(expected: expectedProtocol, negotiated: negotiated))
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(event)  // before leaving: a handler removed forwards nothing
            done.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
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
    /// Full verification against the CAs in `caFile` (PEM), else the system's trust store; with
    /// `certFile` and `keyFile` (PEM; both or neither), the client certificate shown to servers that ask.
    static func configuration(caFile: String?, certFile: String? = nil, keyFile: String? = nil) throws(ClientTLSError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let caFile {
            configuration.trustRoots = .certificates(try certificates(caFile, what: "CA file"))
        }
        switch (certFile, keyFile) {
        case (nil, nil):
            break
        case (let certFile?, let keyFile?):
            configuration.certificateChain = try certificates(certFile, what: "client certificate file").map { .certificate($0) }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw ClientTLSError("cannot read the client key file \(keyFile): \(error)")
            }
        default:
            throw ClientTLSError("a client certificate needs both a certificate file and a key file")
        }
        return configuration
    }

    /// The PEM certificates in `file`; at least one.
    static func certificates(_ file: String, what: String) throws(ClientTLSError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(file)
        } catch {
            throw ClientTLSError("cannot read the \(what) \(file): \(error)")
        }
        guard !certificates.isEmpty else { throw ClientTLSError("cannot read the \(what) \(file): it holds no PEM certificate") }
        return certificates
    }

    /// The handler that starts a connection's TLS to `host`: a DNS name is sent as SNI and must be on the
    /// certificate; an IP address must be among the certificate's IP entries.
    static func handler(context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
    }
}

/// The server did not choose the application protocol the client needs.
struct ALPNMismatch: Error, CustomStringConvertible {
    var expected: String
    var negotiated: String?

    var description: String { "the server did not agree to \(expected) by ALPN (it chose \(negotiated ?? "none"))" }
}

/// TLS files that cannot be used: the message names the file and what is wrong with it.
public struct ClientTLSError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}

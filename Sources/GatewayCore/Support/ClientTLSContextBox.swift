import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// A client TLS context for the proxies' outbound connections (the engine's `https://` targets, the
/// balancer's TLS nodes and their health checks) that SIGHUP can reread: TLS 1.2 or later, the server
/// always verified against ``ClientTLSFiles/caFile`` (else the system's trust store), and a client
/// certificate when the files name one. Two contexts from the same files: ALPN `http/1.1` and `h2`.
///
/// Each new connection takes the context current when it connects; open connections keep theirs. A
/// reload that fails keeps the previous files and context.
public final class ClientTLSContextBox: Sendable {
    private struct Loaded {
        var files: ClientTLSFiles
        var http1: NIOSSLContext
        var h2: NIOSSLContext
    }

    private let box: NIOLockedValueBox<Loaded>

    public init(files: ClientTLSFiles) throws(ClientTLSError) {
        self.box = NIOLockedValueBox(try Self.load(files))
    }

    /// The files the current contexts were read from.
    public var files: ClientTLSFiles { box.withLockedValue { $0.files } }
    /// The context new HTTP/1.1 connections use (a lock taken per connection, not per request).
    public var current: NIOSSLContext { box.withLockedValue { $0.http1 } }
    /// The context new HTTP/2 connections use (ALPN `h2`).
    public var currentH2: NIOSSLContext { box.withLockedValue { $0.h2 } }

    /// Reads `files` (nil: the current ones again); on failure the previous files and contexts stay in
    /// use and the error is thrown.
    public func reload(files: ClientTLSFiles? = nil) throws(ClientTLSError) {
        let loaded = try Self.load(files ?? self.files)
        box.withLockedValue { $0 = loaded }
    }

    /// SIGHUP: reads the reloaded configuration's files (paths changed or not) and logs the outcome under
    /// `name` (the configuration prefix).
    public func reloadLogging(to logger: Logger, name: String, files: ClientTLSFiles) {
        do {
            try reload(files: files)
            logger.info("client tls files reloaded", metadata: ["tls.client": "\(name)"])
        } catch {
            logger.error(
                "client tls reload failed; keeping the previous files", metadata: ["tls.client": "\(name)", "error": "\(error)"])
        }
    }

    private static func load(_ files: ClientTLSFiles) throws(ClientTLSError) -> Loaded {
        var configuration = try ClientTLS.configuration(caFile: files.caFile, certFile: files.certFile, keyFile: files.keyFile)
        do {
            configuration.applicationProtocols = ["http/1.1"]
            let http1 = try NIOSSLContext(configuration: configuration)
            configuration.applicationProtocols = ["h2"]
            return Loaded(files: files, http1: http1, h2: try NIOSSLContext(configuration: configuration))
        } catch {
            throw ClientTLSError("cannot make a TLS context: \(error)")
        }
    }
}

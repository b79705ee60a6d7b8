import Foundation
import Logging

/// A data listener's TLS (`tls.host`, `tls.port`, `tls.certFile`, `tls.keyFile`, `tls.clientCaFile`):
/// HTTP/2 and HTTP/1.1 by ALPN, the files reread on SIGHUP. The engine's and the balancer's listeners
/// read it alike.
public struct TLSListenerSettings: Sendable, Equatable {
    /// The TLS listener's address; `listen.host` unless `tls.host` names another, so the plain listener
    /// can stay on loopback while the TLS one faces the network.
    public var host: String
    public var port: Int
    public var certFile: String
    public var keyFile: String
    /// Mutual TLS: every client must show a certificate that one of these CAs (PEM) signed; the handshake
    /// fails without one. Nil: no client certificate is asked for.
    public var clientCaFile: String?

    public init(host: String = "127.0.0.1", port: Int, certFile: String, keyFile: String, clientCaFile: String? = nil) {
        self.host = host
        self.port = port
        self.certFile = certFile
        self.keyFile = keyFile
        self.clientCaFile = clientCaFile
    }

    /// The listener's context, its files read now (throws naming the keys and what is wrong).
    public func makeContext() throws -> TLSContextBox {
        do {
            return try TLSContextBox(certificatePath: certFile, keyPath: keyFile, clientCAPath: clientCaFile)
        } catch {
            throw ConfigFileError(message: "tls.certFile/tls.keyFile/tls.clientCaFile: \(error)")
        }
    }

    var files: TLSContextBox.Files { TLSContextBox.Files(certificatePath: certFile, keyPath: keyFile, clientCAPath: clientCaFile) }

    /// Reads `tls.*`: nil when neither file is set; both files or neither, each readable. `listenHost` is
    /// the plain listener's address, the default of `tls.host`.
    public static func read(_ v: inout ConfigValidator, defaultPort: Int, listenHost: String) -> TLSListenerSettings? {
        let cert = v.optionalString("tls.certFile")
        let key = v.optionalString("tls.keyFile")
        let host = v.optionalString("tls.host")
        let port = v.int("tls.port", default: defaultPort, in: 0...65535)
        let clientCA = v.optionalString("tls.clientCaFile")
        guard cert != nil || key != nil else {
            for (name, value) in [("tls.clientCaFile", clientCA), ("tls.host", host)] {
                if let value { v.report(name, value: value, expected: "nothing unless tls.certFile and tls.keyFile are set") }
            }
            return nil
        }
        if let host, host.isEmpty { v.report("tls.host", value: host, expected: "an address to listen on") }
        guard let cert, let key else {
            v.report(cert == nil ? "tls.certFile" : "tls.keyFile", value: nil, expected: "both tls.certFile and tls.keyFile, or neither")
            return nil
        }
        for (name, path) in [("tls.certFile", cert), ("tls.keyFile", key)] where !FileManager.default.isReadableFile(atPath: path) {
            v.report(name, value: path, expected: "a readable PEM file")
        }
        if let clientCA {
            do {
                _ = try ClientTLS.certificates(clientCA, what: "CA file")
            } catch {
                v.report("tls.clientCaFile", value: clientCA, expected: "a readable PEM file of CA certificates (\(error))")
            }
        }
        return TLSListenerSettings(host: host ?? listenHost, port: port, certFile: cert, keyFile: key, clientCaFile: clientCA)
    }
}

extension TLSContextBox {
    /// SIGHUP: brings a listener's TLS (`box`, nil when it has none) to the reloaded configuration's
    /// `settings`: reads the files they name (paths changed or not), logs the outcome, and keeps the
    /// previous ones on failure. A listener cannot be opened or closed by a reload: adding or removing
    /// `tls.*` is logged as needing a restart (the files in use are reread in the latter case), and so
    /// is a new `tls.host` or `tls.port` (`running` holds the ones the listener was opened with).
    public static func reloadLogging(_ box: TLSContextBox?, running: TLSListenerSettings?, settings: TLSListenerSettings?, logger: Logger) {
        guard let box else {
            if settings != nil { logger.warning("tls.* added to the configuration: the TLS listener opens at the next restart") }
            return
        }
        if settings == nil {
            logger.warning("tls.* removed from the configuration: the TLS listener stays until a restart")
        }
        if let settings, let running, settings.host != running.host || settings.port != running.port {
            logger.warning(
                "tls.host or tls.port changed in the configuration: the TLS listener moves at the next restart",
                metadata: ["tls.address": "\(running.host):\(running.port)", "tls.configured": "\(settings.host):\(settings.port)"])
        }
        do {
            try box.reload(files: settings?.files)
            logger.info("tls certificate reloaded", metadata: ["tls.certFile": "\(box.files.certificatePath)"])
        } catch {
            logger.error("tls certificate reload failed; keeping the previous one", metadata: ["error": "\(error)"])
        }
    }
}

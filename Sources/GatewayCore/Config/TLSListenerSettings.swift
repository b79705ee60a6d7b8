import Foundation
import Logging

/// A data listener's TLS (`tls.port`, `tls.certFile`, `tls.keyFile`): HTTP/2 and HTTP/1.1 by ALPN, the
/// certificate and key reread on SIGHUP. The engine's and the balancer's listeners read it alike.
public struct TLSListenerSettings: Sendable, Equatable {
    public var port: Int
    public var certFile: String
    public var keyFile: String

    public init(port: Int, certFile: String, keyFile: String) {
        self.port = port
        self.certFile = certFile
        self.keyFile = keyFile
    }

    /// Reads `tls.*`: nil when neither file is set; both files or neither, each readable.
    public static func read(_ v: inout ConfigValidator, defaultPort: Int) -> TLSListenerSettings? {
        let cert = v.optionalString("tls.certFile")
        let key = v.optionalString("tls.keyFile")
        let port = v.int("tls.port", default: defaultPort, in: 0...65535)
        guard cert != nil || key != nil else { return nil }
        guard let cert, let key else {
            v.report(cert == nil ? "tls.certFile" : "tls.keyFile", value: nil, expected: "both tls.certFile and tls.keyFile, or neither")
            return nil
        }
        for (name, path) in [("tls.certFile", cert), ("tls.keyFile", key)] where !FileManager.default.isReadableFile(atPath: path) {
            v.report(name, value: path, expected: "a readable PEM file")
        }
        return TLSListenerSettings(port: port, certFile: cert, keyFile: key)
    }
}

extension TLSContextBox {
    /// SIGHUP: rereads the certificate and key, logs the outcome, and keeps the previous ones on failure.
    public func reloadLogging(to logger: Logger) {
        do {
            try reload()
            logger.info("tls certificate reloaded", metadata: ["tls.certFile": "\(certificatePath)"])
        } catch {
            logger.error("tls certificate reload failed; keeping the previous one", metadata: ["error": "\(error)"])
        }
    }
}

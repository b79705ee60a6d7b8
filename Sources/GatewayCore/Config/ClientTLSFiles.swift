/// The files of an outbound TLS client: the certificate authorities it trusts (nil: the system's trust
/// store) and the client certificate and key it shows to servers that ask for one (mutual TLS).
public struct ClientTLSFiles: Sendable, Hashable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }

    public var isEmpty: Bool { self == ClientTLSFiles() }

    /// Reads `<prefix>.caFile`, `<prefix>.certFile` and `<prefix>.keyFile`. When `enabled`, the files are
    /// read now, so a missing or bad one stops the start (or a reload) with its key named; when not, any
    /// of them set is reported as needing `enabledBy`.
    public static func read(_ v: inout ConfigValidator, prefix: String, enabled: Bool = true, enabledBy: String = "") -> ClientTLSFiles {
        let files = ClientTLSFiles(
            caFile: v.optionalString(prefix + ".caFile"), certFile: v.optionalString(prefix + ".certFile"),
            keyFile: v.optionalString(prefix + ".keyFile"))
        guard enabled else {
            for (name, value) in [("caFile", files.caFile), ("certFile", files.certFile), ("keyFile", files.keyFile)] {
                if let value { v.report(prefix + "." + name, value: value, expected: "nothing unless \(enabledBy)") }
            }
            return files
        }
        do {
            _ = try ClientTLS.configuration(caFile: files.caFile, certFile: files.certFile, keyFile: files.keyFile)
        } catch {
            v.report(prefix + "." + files.key(blamedBy: error.description), value: nil, expected: error.description)
        }
        return files
    }

    /// Which of the three keys an error message is about (`caFile`, `certFile` or `keyFile`).
    func key(blamedBy message: String) -> String {
        if let file = caFile, message.contains("CA file \(file)") { return "caFile" }
        if let file = keyFile, message.contains("key file \(file)") { return "keyFile" }
        if let file = certFile, message.contains("certificate file \(file)") { return "certFile" }
        return certFile == nil ? "certFile" : "keyFile"
    }
}

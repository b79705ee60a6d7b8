import Foundation

/// A throwaway certificate authority with a server and a client certificate it signed, made with
/// `openssl` (ECDSA P-256, valid for a day) in a fresh directory under `$GC_TEST_TMPDIR`. The server's
/// certificate names `localhost` and `127.0.0.1`, the "named" server certificate `localhost` only; the
/// client's is for `test-client`. `otherCA` is a second authority that signed none, for the "untrusted"
/// cases.
public struct TestCertificates: Sendable {
    public let directory: String
    public var caFile: String { directory + "/ca.crt" }
    public var serverCertFile: String { directory + "/server.crt" }
    public var serverKeyFile: String { directory + "/server.key" }
    public var namedServerCertFile: String { directory + "/named.crt" }
    public var namedServerKeyFile: String { directory + "/named.key" }
    public var clientCertFile: String { directory + "/client.crt" }
    public var clientKeyFile: String { directory + "/client.key" }
    public var otherCAFile: String { directory + "/other-ca.crt" }
    /// The second authority's key: with ``otherCAFile`` a certificate (self-signed) that the first
    /// authority did not sign, for the "untrusted client" cases.
    public var otherCAKeyFile: String { directory + "/other-ca.key" }

    public static func make() async throws -> TestCertificates {
        let root = ProcessInfo.processInfo.environment["GC_TEST_TMPDIR"] ?? NSTemporaryDirectory()
        let directory = root + "/certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ["ca", "other-ca"] {
            try await openssl(
                ["req", "-x509"] + curve + [
                    "-days", "1", "-subj", "/CN=gateway-cluster test \(ca)",
                    "-keyout", "\(directory)/\(ca).key", "-out", "\(directory)/\(ca).crt",
                ])
        }
        for (name, subject, extensions) in [
            ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            ("named", "/CN=localhost", "subjectAltName=DNS:localhost"),
            ("client", "/CN=test-client", "extendedKeyUsage=clientAuth"),
        ] {
            try await openssl(["req"] + curve + ["-subj", subject, "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr"])
            try "\(extensions)\n".write(toFile: "\(directory)/\(name).ext", atomically: true, encoding: .utf8)
            try await openssl([
                "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/ca.crt", "-CAkey", "\(directory)/ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", "\(directory)/\(name).ext", "-out", "\(directory)/\(name).crt",
            ])
        }
        return certificates
    }

    private static func openssl(_ arguments: [String]) async throws {
        let (status, output) = try await runTool("/usr/bin/openssl", arguments, timeout: .seconds(30))
        guard status == 0 else { throw TestCertificatesError.openssl(arguments: arguments, output: output) }
    }
}

public enum TestCertificatesError: Error, CustomStringConvertible {
    case openssl(arguments: [String], output: String)

    public var description: String {
        switch self {
        case .openssl(let arguments, let output): "openssl \(arguments.joined(separator: " ")) failed: \(output)"
        }
    }
}

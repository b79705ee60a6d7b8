import Foundation
import GatewayCore
import GatewayTesting
import Logging
import NIOHTTP1
import Testing

/// SIGHUP applies the client TLS files the reloaded configuration names, not only the ones read at start
/// (the listener's side: `HTTPFrontServerTLSTests`).
@Suite struct ClientTLSReloadTests {
    /// A client context reloaded with another CA file trusts what that file holds, from the next
    /// connection on; a file that cannot be read keeps the files in use.
    @Test func clientContextTakesTheReloadedFiles() async throws {
        let certificates = try await TestCertificates.make()
        let backend = try await TestHTTPBackend.start(name: "tls", tls: (certificates.serverCertFile, certificates.serverKeyFile))
        defer { Task { await backend.stop() } }
        let box = try ClientTLSContextBox(files: ClientTLSFiles(caFile: certificates.otherCAFile))
        let client = AdminHTTPClient(timeout: .seconds(5), tls: box)
        let url = "https://127.0.0.1:\(backend.port)/x"
        await #expect(throws: (any Error).self, "the other CA did not sign the backend's certificate") {
            _ = try await client.request(.GET, url)
        }
        box.reloadLogging(to: Logger(label: "test"), name: "test", files: ClientTLSFiles(caFile: certificates.caFile))
        #expect(box.files.caFile == certificates.caFile)
        #expect(try await client.request(.GET, url).status == .ok)
        box.reloadLogging(to: Logger(label: "test"), name: "test", files: ClientTLSFiles(caFile: "/nonexistent/ca.crt"))
        #expect(box.files.caFile == certificates.caFile, "a bad file keeps the files in use")
        #expect(try await client.request(.GET, url).status == .ok)
    }
}

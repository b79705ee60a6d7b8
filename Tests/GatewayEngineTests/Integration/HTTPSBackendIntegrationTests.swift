import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// `https://` targets: a real TLS backend (certificates made by openssl for the run), trusted through
    /// `backends.caFile`, verified by name and by address.
    @Suite struct HTTPSBackends {
        /// Through a trusted certificate, by IP address and by name: requests and responses pass, the
        /// `Host` header is the target's, and keep-alive holds over TLS (20 requests, a connection or two).
        @Test func trustedHTTPSTargets() async throws {
            let certificates = try await TestCertificates.make()
            let byAddress = try await TestHTTPBackend.start(name: "secure-ip", tls: (certificates.serverCertFile, certificates.serverKeyFile))
            let byName = try await TestHTTPBackend.start(
                name: "secure-name", tls: (certificates.namedServerCertFile, certificates.namedServerKeyFile))
            defer {
                Task {
                    await byAddress.stop()
                    await byName.stop()
                }
            }
            byAddress.setRecording(true)
            try await withEngines(settings: ["backends.caFile": certificates.caFile]) { cluster in
                try await cluster.putAPI(apiJSON("ip", path: "/ip", strip: true, urls: ["https://127.0.0.1:\(byAddress.port)/base"]))
                try await cluster.putAPI(apiJSON("name", path: "/name", urls: ["https://localhost:\(byName.port)"]))
                for i in 0..<20 {
                    let response = try await cluster.first.send(.POST, "/ip/item/\(i)", body: "payload \(i)")
                    #expect(response.status == 200)
                    #expect(response.backend == "secure-ip")
                }
                let seen = byAddress.seen
                #expect(seen.count == 20)
                #expect(seen.first?.uri == "/base/item/0")
                #expect(seen.first?.headers.first(name: "Host") == "127.0.0.1:\(byAddress.port)")
                #expect(seen.first.map { String(buffer: $0.body) } == "payload 0")
                #expect(byAddress.connections.accepted <= 4, "keep-alive over TLS: \(byAddress.connections.accepted) connections for 20 requests")

                let named = try await cluster.first.send(.GET, "/name/x")
                #expect(named.status == 200)
                #expect(named.backend == "secure-name")
            }
        }

        /// A certificate the engine cannot trust (the system's store does not know the test CA), or one
        /// for another name or address: 502 with the request id, and no request reaches the backend.
        @Test func untrustedHTTPSTargetsGive502() async throws {
            let certificates = try await TestCertificates.make()
            let backend = try await TestHTTPBackend.start(
                name: "named-only", tls: (certificates.namedServerCertFile, certificates.namedServerKeyFile))
            defer { Task { await backend.stop() } }
            // The system's trust store: the test CA is unknown.
            try await withEngines { cluster in
                try await cluster.putAPI(apiJSON("untrusted", path: "/untrusted", urls: ["https://localhost:\(backend.port)"]))
                let response = try await cluster.first.send(.GET, "/untrusted/x", headers: [("X-Request-ID", "tls-502")])
                #expect(response.status == 502)
                #expect(response.string("request_id") == "tls-502")
            }
            // The right CA, but the certificate names localhost only, not 127.0.0.1.
            try await withEngines(settings: ["backends.caFile": certificates.caFile]) { cluster in
                try await cluster.putAPI(apiJSON("wrongname", path: "/wrongname", urls: ["https://127.0.0.1:\(backend.port)"]))
                #expect(try await cluster.first.send(.GET, "/wrongname/x").status == 502)
                try await cluster.putAPI(apiJSON("rightname", path: "/rightname", urls: ["https://localhost:\(backend.port)"]))
                #expect(try await cluster.first.send(.GET, "/rightname/x").status == 200)
            }
            #expect(backend.requestCount == 1, "only the verified connection carried a request")
        }

        /// A backend that requires a client certificate: without `backends.certFile` the handshake fails
        /// (502, nothing reaches it); with the certificate its CA signed, requests pass.
        @Test func clientCertificateForBackendsThatRequireOne() async throws {
            let certificates = try await TestCertificates.make()
            let backend = try await TestHTTPBackend.start(
                name: "mutual", tls: (certificates.serverCertFile, certificates.serverKeyFile), clientCAFile: certificates.caFile)
            defer { Task { await backend.stop() } }
            let api = apiJSON("mutual", path: "/mutual", urls: ["https://127.0.0.1:\(backend.port)"])
            try await withEngines(settings: ["backends.caFile": certificates.caFile]) { cluster in
                try await cluster.putAPI(api)
                #expect(try await cluster.first.send(.GET, "/mutual/x").status == 502)
            }
            #expect(backend.requestCount == 0, "no request without a client certificate")
            try await withEngines(settings: [
                "backends.caFile": certificates.caFile, "backends.certFile": certificates.clientCertFile,
                "backends.keyFile": certificates.clientKeyFile,
            ]) { cluster in
                try await cluster.putAPI(api)
                for _ in 0..<5 { #expect(try await cluster.first.send(.GET, "/mutual/x").status == 200) }
            }
            #expect(backend.requestCount == 5)
        }

        /// A plain-HTTP backend named by an https:// URL: the handshake fails, 502 (not a hang).
        @Test func httpsURLToAPlainBackendGives502() async throws {
            try await withBackends(["plain"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("mismatch", path: "/mismatch", urls: ["https://127.0.0.1:\(backends[0].port)"]))
                    let start = ContinuousClock.now
                    #expect(try await cluster.first.send(.GET, "/mismatch/x").status == 502)
                    #expect(ContinuousClock.now - start < .seconds(5))
                }
            }
        }
    }
}

extension EngineIntegration {
    /// `listen.trustedProxies`: from a trusted proxy (here the test client on 127.0.0.1) the backend sees
    /// the scheme and host the proxy reported; from anyone else, the engine's own.
    @Suite struct TrustedProxies {
        func forwardedTo(_ backend: TestHTTPBackend, settings: [String: String]) async throws -> (proto: String?, host: String?) {
            try await withEngines(settings: settings) { cluster in
                try await cluster.putAPI(apiJSON("p", path: "/p", targets: [backend.port]))
                let response = try await cluster.first.send(
                    .GET, "/p/x", headers: [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "api.example.com")])
                #expect(response.status == 200)
                let seen = backend.seen.last?.headers
                return (seen?.first(name: "X-Forwarded-Proto"), seen?.first(name: "X-Forwarded-Host"))
            }
        }

        @Test func schemeAndHostFromTrustedProxiesOnly() async throws {
            try await withBackends(["b"]) { backends in
                backends[0].setRecording(true)
                let trusted = try await forwardedTo(backends[0], settings: ["listen.trustedProxies": "127.0.0.0/8"])
                #expect(trusted.proto == "https")
                #expect(trusted.host == "api.example.com")
                let untrusted = try await forwardedTo(backends[0], settings: [:])
                #expect(untrusted.proto == "http")
                #expect(untrusted.host?.hasPrefix("127.0.0.1:") == true, "the Host the engine was called with: \(String(describing: untrusted.host))")
                let other = try await forwardedTo(backends[0], settings: ["listen.trustedProxies": "10.0.0.0/8"])
                #expect(other.proto == "http")
            }
        }

        /// Behind a trusted proxy (the test client on 127.0.0.1 playing a balancer), a keyless API's
        /// per-client rate limit counts each original client of `X-Forwarded-For` on its own, not the
        /// proxy; without `listen.trustedProxies` the chain is the client's claim and the peer is counted.
        @Test func perClientLimitsGoByTheOriginalClientBehindTrustedProxies() async throws {
            try await withBackends(["b"]) { backends in
                let api = apiJSON(
                    "limited", path: "/limited", targets: [backends[0].port], extra: #""rate_limit":{"rate":1,"period_seconds":60,"burst":1}"#)
                func statuses(_ settings: [String: String]) async throws -> [Int] {
                    try await withEngines(settings: settings) { cluster in
                        try await cluster.putAPI(api)
                        var seen: [Int] = []
                        for client in ["203.0.113.1", "203.0.113.2", "203.0.113.1"] {
                            seen.append(try await cluster.first.send(.GET, "/limited/x", headers: [("X-Forwarded-For", client)]).status)
                        }
                        return seen
                    }
                }
                let trusted = try await statuses(["listen.trustedProxies": "127.0.0.0/8"])
                #expect(trusted == [200, 200, 429], "each original client has its own bucket")
                let untrusted = try await statuses([:])
                #expect(untrusted == [200, 429, 429], "the peer is the client")
            }
        }

        /// `ip_access`: an address in `deny` gets 403 with a JSON body, and with `allow` set only its
        /// addresses get through; behind a trusted proxy the original client is the address checked.
        @Test func ipAccessListsGoByTheOriginalClient() async throws {
            try await withBackends(["b"]) { backends in
                try await withEngines(settings: ["listen.trustedProxies": "127.0.0.0/8"]) { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(
                        apiJSON(
                            "inside", path: "/inside", targets: [backends[0].port],
                            extra: #""ip_access":{"allow":["203.0.113.0/24","2001:db8::/32"],"deny":["203.0.113.66"]}"#))
                    func status(_ client: String) async throws -> TestResponse {
                        try await engine.send(.GET, "/inside/x", headers: [("X-Forwarded-For", client)])
                    }
                    #expect(try await status("203.0.113.7").status == 200)
                    #expect(try await status("2001:db8::9").status == 200)
                    let denied = try await status("203.0.113.66")
                    #expect(denied.status == 403)
                    #expect(denied.string("error") == "client address not allowed")
                    #expect(denied.string("request_id") == denied.header("X-Request-ID"))
                    #expect(try await status("198.51.100.1").status == 403, "outside allow")
                    #expect(try await status("203.0.113.7, 198.51.100.1").status == 403, "the rightmost untrusted address counts")
                    #expect(backends[0].requestCount == 2)

                    let bad = try await engine.admin(
                        .PUT, "/apis/bad",
                        json: apiJSON("bad", path: "/bad", targets: [backends[0].port], extra: #""ip_access":{"allow":[],"deny":["10.0.0.0/33"]}"#))
                    #expect(bad.status == 400)
                    #expect(bad.text.contains("ip_access.allow"))
                    #expect(bad.text.contains("ip_access.deny[0]"))
                }
            }
        }
    }
}

import Foundation
import GatewayCore
import Testing

@testable import GatewayEngine

@Suite struct APIDefinitionTests {
    /// A complete definition parses into the model, and omitted fields take their defaults.
    @Test func parsesSnakeCaseJSONWithDefaults() throws {
        let json = """
            {"id": "orders", "name": "Orders", "listen_path": "/orders/", "hosts": ["API.example.com"],
             "strip_listen_path": true,
             "targets": [{"url": "http://10.0.0.5:8080/base", "weight": 3}, {"url": "http://10.0.0.6"}],
             "timeouts": {"connect_ms": 500},
             "auth": {"mode": "api_key"},
             "rate_limit": {"rate": 100, "period_seconds": 60, "burst": 20, "fail_mode": "open"},
             "quota": {"limit": 1000, "period_seconds": 86400},
             "cache": {"ttl_seconds": 30, "vary_headers": ["Accept"], "status_codes": [200, 404]}}
            """
        let api = try APIDefinition.parse(json: Array(json.utf8))
        #expect(api.id == "orders")
        #expect(api.listenPath == "/orders")  // trailing slash normalised
        #expect(api.hosts == ["api.example.com"])
        #expect(api.stripListenPath)
        #expect(api.targets == [.init(url: "http://10.0.0.5:8080/base", weight: 3), .init(url: "http://10.0.0.6", weight: 1)])
        #expect(api.timeouts == .init(connectMilliseconds: 500, responseMilliseconds: 30_000))
        #expect(api.auth.mode == .apiKey)
        #expect(api.auth.keyHeader == "x-api-key")
        #expect(api.rateLimit == .init(rate: 100, periodSeconds: 60, burst: 20, failMode: .open))
        #expect(api.quota == QuotaPolicy(limit: 1000, periodSeconds: 86400))
        #expect(api.cache == CachePolicy(enabled: true, methods: ["GET", "HEAD"], ttlSeconds: 30, statusCodes: [200, 404], varyHeaders: ["accept"]))
        #expect(api.active)
    }

    /// Encoding writes snake_case fields, and decoding the canonical JSON gives the same definition.
    @Test func roundTripsThroughCanonicalJSON() throws {
        var api = makeAPI("orders", path: "/orders", strip: true)
        api.rateLimit = .init(rate: 5, periodSeconds: 1, burst: 10, failMode: .open)
        api.auth = .init(
            mode: .jwt, jwt: JWTSettings(keys: [.init(algorithm: .hs256, secret: String(repeating: "s", count: 32))], identityClaim: "client_id"))
        let json = String(decoding: api.canonicalJSON(), as: UTF8.self)
        for field in ["\"listen_path\"", "\"strip_listen_path\"", "\"rate_limit\"", "\"fail_mode\"", "\"identity_claim\"", "\"connect_ms\""] {
            #expect(json.contains(field), "missing \(field) in \(json)")
        }
        #expect(try APIDefinition.parse(json: Array(json.utf8)) == api)
        #expect(try JSONDecoder().decode(APIDefinition.self, from: Data(json.utf8)) == api)
    }

    /// Every problem is reported at once, each naming its field path.
    @Test func reportsEveryProblemWithItsFieldPath() throws {
        let json = """
            {"id": "Bad Id", "listenpath": "/x", "hosts": ["bad host"],
             "targets": [{"url": "http://ok:80", "weight": -1}, {"url": "ftp://x"}],
             "auth": {"mode": "jwt"},
             "rate_limit": {"rate": 10, "fail_mode": "maybe"},
             "cache": {"methods": ["POST"], "status_codes": [99]}}
            """
        let error = #expect(throws: APIDefinitionError.self) { try APIDefinition.parse(json: Array(json.utf8)) }
        let messages = Set(error?.problems.map(\.description) ?? [])
        let expected: [String] = [
            #"targets[1].url: "ftp://x" is invalid: expected an http:// or https:// URL"#,
            #"targets[0].weight: "-1" is invalid: expected an integer in 0...1000"#,
            #"rate_limit.fail_mode: "maybe" is invalid: expected one of closed, open"#,
            #"cache.methods[0]: "POST" is invalid: expected GET or HEAD"#,
            #"cache.status_codes[0]: "99" is invalid: expected an HTTP status code in 200...599"#,
            "auth.jwt: missing: expected JWT settings (keys, identity_claim) when auth.mode is jwt",
            #"hosts[0]: "bad host" is invalid: expected a host name such as api.example.com or a wildcard such as *.example.com"#,
        ]
        for message in expected {
            #expect(messages.contains(message), "missing: \(message)\ngot:\n\(messages.sorted().joined(separator: "\n"))")
        }
        #expect(messages.contains { $0.hasPrefix("listenpath: \"/x\" is invalid: expected a known field") })
        #expect(messages.contains { $0.hasPrefix("id: \"Bad Id\" is invalid") })
        #expect(error?.problems.count == expected.count + 2)
    }

    /// Wrong JSON types are reported by path rather than stopping at the first.
    @Test func reportsWrongTypes() {
        let json = #"{"id": 7, "listen_path": "/a", "targets": {"url": "http://a"}, "active": "yes", "timeouts": {"connect_ms": 1.5}}"#
        let error = #expect(throws: APIDefinitionError.self) { try APIDefinition.parse(json: Array(json.utf8)) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys == ["id", "targets", "active", "timeouts.connect_ms"])
    }

    @Test func rejectsTextThatIsNotJSON() {
        let error = #expect(throws: APIDefinitionError.self) { try APIDefinition.parse(json: Array("{not json".utf8)) }
        #expect(error?.problems.map(\.key) == ["(document)"])
    }

    /// An API must say where it listens: a path, hosts, or both.
    @Test func requiresListenPathOrHosts() {
        var api = makeAPI("a")
        api.listenPath = nil
        #expect(api.validate().map(\.key) == ["listen_path"])
        api.hosts = ["*.example.com"]
        #expect(api.validate().isEmpty)
        api.listenPath = "/a/../b"
        #expect(api.validate().map(\.key) == ["listen_path"])
    }

    /// JWT keys are checked: HS256 secrets need 32 bytes, PEM keys must parse for their algorithm.
    @Test func checksJWTKeys() throws {
        var api = makeAPI("a")
        api.auth = .init(
            mode: .jwt,
            jwt: JWTSettings(keys: [
                .init(algorithm: .hs256, secret: "short"),
                .init(algorithm: .rs256, publicKeyPEM: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"),
                .init(algorithm: .es256, publicKeyPEM: TestKeys.rsaPublicPEM),
                .init(algorithm: .rs256, publicKeyPEM: TestKeys.rsaPublicPEM),
            ]))
        let problems = api.validate()
        #expect(problems.map(\.key) == ["auth.jwt.keys[0].secret", "auth.jwt.keys[1].public_key_pem", "auth.jwt.keys[2].public_key_pem"])
        #expect(problems[0].value == "***", "a secret is never echoed")
    }

    /// `issuer`, `audiences` and `jwks_url` from JSON, each checked: a key set URL stands in for `keys`.
    @Test func readsAndChecksIssuerAudiencesAndKeySet() throws {
        let json =
            #"{"id": "a", "listen_path": "/a", "targets": [{"url": "http://b"}], "auth": {"mode": "jwt", "jwt": {"jwks_url": "https://idp.example/.well-known/jwks.json", "jwks_refresh_seconds": 600, "issuer": "https://idp.example/", "audiences": ["orders"]}}}"#
        let api = try APIDefinition.parse(json: Array(json.utf8))
        #expect(api.auth.jwt?.jwksURL == "https://idp.example/.well-known/jwks.json")
        #expect(api.auth.jwt?.jwksRefreshSeconds == 600)
        #expect(api.auth.jwt?.issuer == "https://idp.example/")
        #expect(api.auth.jwt?.audiences == ["orders"])
        #expect(api.validate().isEmpty)
        #expect(try APIDefinition.parse(json: api.canonicalJSON()) == api, "kept through Redis's JSON")

        var bad = makeAPI("b")
        bad.auth = .init(
            mode: .jwt,
            jwt: JWTSettings(keys: [], issuer: "", audiences: [], jwksURL: "ftp://idp.example/jwks", jwksRefreshSeconds: 5))
        #expect(
            bad.validate().map(\.key) == [
                "auth.jwt.jwks_url", "auth.jwt.jwks_refresh_seconds", "auth.jwt.issuer", "auth.jwt.audiences",
            ])
        bad.auth.jwt = JWTSettings(keys: [], jwksRefreshSeconds: 60)
        #expect(bad.validate().map(\.key) == ["auth.jwt.keys", "auth.jwt.jwks_refresh_seconds"])
    }

    /// `cors` from JSON (origins lower-cased, methods upper-cased) and its checks.
    @Test func readsAndChecksCORS() throws {
        let json =
            #"{"id": "a", "listen_path": "/a", "targets": [{"url": "http://b"}], "cors": {"allow_origins": ["HTTPS://App.Example.com", "http://localhost:3000"], "allow_methods": ["get", "post"], "max_age_seconds": 60}}"#
        let api = try APIDefinition.parse(json: Array(json.utf8))
        #expect(api.cors?.allowOrigins == ["https://app.example.com", "http://localhost:3000"])
        #expect(api.cors?.allowMethods == ["GET", "POST"])
        #expect(try APIDefinition.parse(json: api.canonicalJSON()) == api)
        var bad = makeAPI("b")
        bad.cors = .init(
            allowOrigins: ["https://app.example.com/path", "app.example.com", "*"], allowHeaders: ["bad header"], allowCredentials: true)
        #expect(
            bad.validate().map(\.key) == [
                "cors.allow_origins[0]", "cors.allow_origins[1]", "cors.allow_origins", "cors.allow_headers[0]",
            ])
        bad.cors = .init(allowOrigins: [])
        #expect(bad.validate().map(\.key) == ["cors.allow_origins"])
    }

    /// Secrets never appear in problems or in the definition as the admin API shows it.
    @Test func keepsSecretsOutOfMessagesAndDisplays() throws {
        let json =
            #"{"id": "a", "listen_path": "/a", "targets": [{"url": "http://b"}], "auth": {"mode": "jwt", "jwt": {"keys": [{"algorithm": "HS256", "secret": 123456789}]}}}"#
        let error = #expect(throws: APIDefinitionError.self) { try APIDefinition.parse(json: Array(json.utf8)) }
        #expect(error?.problems.map(\.description).contains(#"auth.jwt.keys[0].secret: "***" is invalid: expected a string"#) == true)
        #expect(error?.description.contains("123456789") == false)

        var api = makeAPI("a")
        let secret = String(repeating: "k", count: 40)
        api.auth = .init(mode: .jwt, jwt: JWTSettings(keys: [.init(algorithm: .hs256, secret: secret)]))
        let shown = api.redactingSecrets()
        #expect(!String(decoding: shown.canonicalJSON(), as: UTF8.self).contains(secret))
        #expect(shown.validate().map(\.key) == ["auth.jwt.keys[0].secret"], "writing a redacted definition back fails")
    }

    @Test func validatesBackendURLs() {
        #expect(BackendURL.parse("http://10.0.0.1:8080/v1/") == .success(BackendURL(host: "10.0.0.1", port: 8080, basePath: "/v1")))
        #expect(BackendURL.parse("http://[::1]:81") == .success(BackendURL(host: "::1", port: 81, basePath: "")))
        #expect(BackendURL.parse("http://svc") == .success(BackendURL(host: "svc", port: 80, basePath: "")))
        #expect(BackendURL.parse("https://svc") == .success(BackendURL(host: "svc", port: 443, basePath: "", tls: true)))
        #expect(BackendURL.parse("https://svc:8443/api") == .success(BackendURL(host: "svc", port: 8443, basePath: "/api", tls: true)))
        #expect(BackendURL(host: "svc", port: 443, basePath: "", tls: true).authority == "svc", "the scheme's port is left out of Host")
        #expect(BackendURL(host: "svc", port: 80, basePath: "").authority == "svc")
        #expect(BackendURL(host: "::1", port: 8443, basePath: "", tls: true).authority == "[::1]:8443")
        #expect(
            BackendURL(host: "svc", port: 8443, basePath: "/api", tls: true).target
                == UpstreamTarget(id: "https://svc:8443/api", host: "svc", port: 8443, tls: true))
        #expect(BackendURL.parse("ftp://svc") == .failure(.notHTTP))
        #expect(BackendURL.parse("http://svc:0") == .failure(.badPort))
        #expect(BackendURL.parse("http://u:p@svc") == .failure(.unsupportedPart))
        #expect(BackendURL.parse("http://") == .failure(.badHost))
    }
}

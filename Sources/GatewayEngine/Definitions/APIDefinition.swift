import Foundation
import GatewayCore

/// One API the gateway fronts: where it listens, where it forwards, and the policies in between.
///
/// JSON is the wire format, with snake_case field names:
///
/// ```json
/// {
///   "id": "orders", "name": "Orders API",
///   "listen_path": "/orders", "hosts": ["api.example.com"], "strip_listen_path": true,
///   "targets": [{"url": "http://10.0.0.5:8080", "weight": 3}, {"url": "http://10.0.0.6:8080"}],
///   "timeouts": {"connect_ms": 2000, "response_ms": 30000},
///   "auth": {"mode": "jwt", "jwt": {"keys": [{"algorithm": "HS256", "secret": "…"}], "identity_claim": "sub"}},
///   "rate_limit": {"rate": 100, "period_seconds": 60, "burst": 20, "fail_mode": "open"},
///   "quota": {"limit": 100000, "period_seconds": 86400},
///   "cache": {"enabled": true, "ttl_seconds": 30, "vary_headers": ["accept"]},
///   "ip_access": {"allow": ["10.0.0.0/8"], "deny": ["10.9.0.0/16"]},
///   "cors": {"allow_origins": ["https://app.example.com"], "allow_credentials": true},
///   "request_headers": {"set": {"X-Env": "prod"}, "remove": ["Cookie"]},
///   "response_headers": {"add": {"Strict-Transport-Security": "max-age=63072000"}},
///   "active": true
/// }
/// ```
///
/// Decoding checks every field and throws ``APIDefinitionError`` listing every problem by its path.
struct APIDefinition: Sendable, Hashable {
    var id: String
    var name: String
    /// Path prefix, matched on segment boundaries; nil means `/` (with `hosts` set).
    var listenPath: String?
    /// Host names (`api.example.com`) or wildcards (`*.example.com`); empty matches any host.
    var hosts: [String] = []
    /// Whether the listen path is removed before forwarding.
    var stripListenPath: Bool = false
    /// The request methods the API takes (uppercase); nil takes every method. `HEAD` goes with `GET`.
    /// Others get 405 with `Allow`, before any credential is looked at.
    var methods: [String]?
    /// A request body limit for the API below the listener's `limits.maxBodyBytes` (which stays the
    /// ceiling); larger bodies get 413 before any backend sees them.
    var maxBodyBytes: Int?
    var targets: [Target]
    /// Server errors (500–599) that send an idempotent request to another target, as a failed
    /// connection does; nil or empty: answers go to the client whatever their status.
    var retryOnStatus: [Int]?
    /// Active health checks of the targets; nil leaves them to passive health alone.
    var healthCheck: HealthCheck?
    var timeouts: Timeouts = Timeouts()
    var auth: Auth = Auth()
    var rateLimit: RateLimit?
    var quota: QuotaPolicy?
    var cache: CachePolicy = CachePolicy()
    /// Which client addresses may call the API; nil lets every address.
    var ipAccess: IPAccess?
    /// Cross-origin calls from browsers; nil leaves CORS to the backend.
    var cors: CORS?
    /// Fields set on or removed from requests before they reach the backend.
    var requestHeaders: RequestHeaders?
    /// Fields added to every answer.
    var responseHeaders: ResponseHeaders?
    var active: Bool = true

    init(
        id: String, name: String, listenPath: String? = nil, hosts: [String] = [], stripListenPath: Bool = false,
        methods: [String]? = nil, maxBodyBytes: Int? = nil, targets: [Target], retryOnStatus: [Int]? = nil, healthCheck: HealthCheck? = nil,
        timeouts: Timeouts = Timeouts(),
        auth: Auth = Auth(),
        rateLimit: RateLimit? = nil,
        quota: QuotaPolicy? = nil, cache: CachePolicy = CachePolicy(), ipAccess: IPAccess? = nil, cors: CORS? = nil,
        requestHeaders: RequestHeaders? = nil, responseHeaders: ResponseHeaders? = nil, active: Bool = true
    ) {
        self.id = id
        self.name = name
        self.listenPath = listenPath
        self.hosts = hosts
        self.stripListenPath = stripListenPath
        self.methods = methods
        self.maxBodyBytes = maxBodyBytes
        self.targets = targets
        self.retryOnStatus = retryOnStatus
        self.healthCheck = healthCheck
        self.timeouts = timeouts
        self.auth = auth
        self.rateLimit = rateLimit
        self.quota = quota
        self.cache = cache
        self.ipAccess = ipAccess
        self.cors = cors
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
        self.active = active
    }

    /// Active health checks of an API's targets: every `intervalSeconds`, each engine sends `GET path`
    /// to each target (the path on the target's host, not under its base path). `unhealthyThreshold`
    /// failed checks in a row (a status outside `expectedStatus`, no answer within `timeoutMilliseconds`,
    /// a refused connection) take a target out of rotation; `healthyThreshold` passed ones put it back. A
    /// target starts healthy. When every target is unhealthy, all are tried.
    struct HealthCheck: Sendable, Hashable, Codable {
        var path: String
        var intervalSeconds: Int = 5
        var timeoutMilliseconds: Int = 1_000
        var healthyThreshold: Int = 2
        var unhealthyThreshold: Int = 3
        /// `200`, `200-399`, `2xx`, or a comma-separated list of those.
        var expectedStatus: String = "200-399"

        init(
            path: String, intervalSeconds: Int = 5, timeoutMilliseconds: Int = 1_000, healthyThreshold: Int = 2, unhealthyThreshold: Int = 3,
            expectedStatus: String = "200-399"
        ) {
            self.path = path
            self.intervalSeconds = intervalSeconds
            self.timeoutMilliseconds = timeoutMilliseconds
            self.healthyThreshold = healthyThreshold
            self.unhealthyThreshold = unhealthyThreshold
            self.expectedStatus = expectedStatus
        }

        enum CodingKeys: String, CodingKey {
            case path
            case intervalSeconds = "interval_seconds"
            case timeoutMilliseconds = "timeout_ms"
            case healthyThreshold = "healthy_threshold"
            case unhealthyThreshold = "unhealthy_threshold"
            case expectedStatus = "expected_status"
        }
    }

    /// Request fields the engine sets (replacing the client's) or removes before forwarding.
    struct RequestHeaders: Sendable, Hashable, Codable {
        var set: [String: String]?
        var remove: [String]?

        init(set: [String: String]? = nil, remove: [String]? = nil) {
            self.set = set
            self.remove = remove
        }
    }

    /// Fields the engine adds to every answer of the API (the backend's, cached, and its own), and
    /// backend fields it leaves out (`Server`, `X-Powered-By`, internal ones).
    struct ResponseHeaders: Sendable, Hashable, Codable {
        var add: [String: String]?
        var remove: [String]?

        init(add: [String: String]? = nil, remove: [String]? = nil) {
            self.add = add
            self.remove = remove
        }
    }

    /// Cross-origin resource sharing, answered by the engine: preflight requests (`OPTIONS` with
    /// `Access-Control-Request-Method`) get 204 without auth or a backend call, and responses to allowed
    /// origins carry `Access-Control-Allow-Origin`.
    struct CORS: Sendable, Hashable, Codable {
        /// `https://app.example.com` origins, or `*` for any (not with credentials).
        var allowOrigins: [String]
        /// Nil: `GET, HEAD, POST, PUT, PATCH, DELETE`.
        var allowMethods: [String]?
        /// Request headers a call may carry (lower case); nil allows those the preflight asks for.
        var allowHeaders: [String]?
        var exposeHeaders: [String]?
        var allowCredentials: Bool?
        /// How long browsers may keep a preflight's answer; nil: 600.
        var maxAgeSeconds: Int?

        init(
            allowOrigins: [String], allowMethods: [String]? = nil, allowHeaders: [String]? = nil, exposeHeaders: [String]? = nil,
            allowCredentials: Bool? = nil, maxAgeSeconds: Int? = nil
        ) {
            self.allowOrigins = allowOrigins
            self.allowMethods = allowMethods
            self.allowHeaders = allowHeaders
            self.exposeHeaders = exposeHeaders
            self.allowCredentials = allowCredentials
            self.maxAgeSeconds = maxAgeSeconds
        }

        static let defaultMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

        enum CodingKeys: String, CodingKey {
            case allowOrigins = "allow_origins"
            case allowMethods = "allow_methods"
            case allowHeaders = "allow_headers"
            case exposeHeaders = "expose_headers"
            case allowCredentials = "allow_credentials"
            case maxAgeSeconds = "max_age_seconds"
        }
    }

    /// Client addresses (IPs or CIDR ranges, IPv4 and IPv6) the API answers: an address in `deny` is
    /// refused, and with `allow` set only an address in it is let through (403 either way). The address
    /// is the original client behind trusted proxies (`listen.trustedProxies`), else the peer.
    struct IPAccess: Sendable, Hashable, Codable {
        var allow: [String]?
        var deny: [String]?

        init(allow: [String]? = nil, deny: [String]? = nil) {
            self.allow = allow
            self.deny = deny
        }
    }

    /// A backend the API forwards to.
    struct Target: Sendable, Hashable, Codable {
        /// `http://host[:port][/base/path]`, or `https://…` for a backend reached over TLS.
        var url: String
        /// Share of requests relative to the other targets; 0 takes the target out of rotation.
        var weight: Int = 1

        init(url: String, weight: Int = 1) {
            self.url = url
            self.weight = weight
        }
    }

    struct Timeouts: Sendable, Hashable, Codable {
        var connectMilliseconds: Int = 2_000
        /// From the request being sent to the response head arriving.
        var responseMilliseconds: Int = 30_000

        init(connectMilliseconds: Int = 2_000, responseMilliseconds: Int = 30_000) {
            self.connectMilliseconds = connectMilliseconds
            self.responseMilliseconds = responseMilliseconds
        }

        var connect: Duration { .milliseconds(connectMilliseconds) }
        var response: Duration { .milliseconds(responseMilliseconds) }

        enum CodingKeys: String, CodingKey {
            case connectMilliseconds = "connect_ms"
            case responseMilliseconds = "response_ms"
        }
    }

    enum AuthMode: String, Sendable, Hashable, Codable, CaseIterable {
        case keyless
        case apiKey = "api_key"
        case jwt
    }

    struct Auth: Sendable, Hashable, Codable {
        var mode: AuthMode = .keyless
        /// The request header carrying the API key (lower case); `Authorization: Bearer` is also accepted.
        var keyHeader: String = "x-api-key"
        var jwt: JWTSettings?
        /// Whether backends get the credential the engine checked (the API key's header, or the
        /// `Authorization: Bearer` field). Nil or false: it is removed, and `X-Gateway-Client-ID` names
        /// the client instead. Optional so that definitions without it keep their canonical JSON.
        var forwardCredentials: Bool?

        init(mode: AuthMode = .keyless, keyHeader: String = "x-api-key", jwt: JWTSettings? = nil, forwardCredentials: Bool? = nil) {
            self.mode = mode
            self.keyHeader = keyHeader
            self.jwt = jwt
            self.forwardCredentials = forwardCredentials
        }

        enum CodingKeys: String, CodingKey {
            case mode
            case keyHeader = "key_header"
            case jwt
            case forwardCredentials = "forward_credentials"
        }
    }

    /// The API's rate limit and what to do when Redis is unreachable.
    struct RateLimit: Sendable, Hashable, Codable {
        var rate: Int
        var periodSeconds: Int
        var burst: Int
        var failMode: RateLimitFailMode = .closed

        init(rate: Int, periodSeconds: Int, burst: Int, failMode: RateLimitFailMode = .closed) {
            self.rate = rate
            self.periodSeconds = periodSeconds
            self.burst = burst
            self.failMode = failMode
        }

        var policy: RateLimitPolicy { RateLimitPolicy(rate: rate, periodSeconds: periodSeconds, burst: burst) }

        enum CodingKeys: String, CodingKey {
            case rate
            case periodSeconds = "period_seconds"
            case burst
            case failMode = "fail_mode"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case listenPath = "listen_path"
        case hosts
        case stripListenPath = "strip_listen_path"
        case methods
        case maxBodyBytes = "max_body_bytes"
        case targets
        case retryOnStatus = "retry_on_status"
        case healthCheck = "health_check"
        case timeouts, auth
        case rateLimit = "rate_limit"
        case quota, cache
        case ipAccess = "ip_access"
        case cors
        case requestHeaders = "request_headers"
        case responseHeaders = "response_headers"
        case active
    }
}

/// How a JWT-protected API verifies tokens.
struct JWTSettings: Sendable, Hashable, Codable {
    var keys: [Key]
    /// The claim whose value identifies the client (for rate limits and logs).
    var identityClaim: String = "sub"
    /// Clock skew allowed when checking `exp` and `nbf`.
    var leewaySeconds: Int = 30
    /// When set, a token's `iss` must equal it.
    var issuer: String?
    /// When set, a token's `aud` (a string or an array of strings) must name at least one of these.
    var audiences: [String]?
    /// A JSON Web Key Set to fetch the verification keys from (`http://` or `https://`, verified like an
    /// `https://` target): its RSA keys verify RS256 tokens, its P-256 EC keys ES256 ones, beside any
    /// `keys`. Refetched every `jwksRefreshSeconds`, and when a token names a `kid` the set lacks (at
    /// most every 10 s); a failed fetch keeps the last set.
    var jwksURL: String?
    var jwksRefreshSeconds: Int?
    /// When set, a token must grant every one of these scopes, in its `scope` claim (space-separated,
    /// RFC 9068) or its `scp` claim (an array or a space-separated string); else 403 `insufficient_scope`.
    var requiredScopes: [String]?
    /// Claims sent to the backend as request fields (claim name → field name): a string as it is, a
    /// number or boolean as JSON writes it, an array of those joined with `,`; bytes outside visible ASCII
    /// percent-encoded. A field of these names from the client is always dropped, so a backend can
    /// believe it; an absent claim sends none.
    var claimsToHeaders: [String: String]?

    init(
        keys: [Key], identityClaim: String = "sub", leewaySeconds: Int = 30, issuer: String? = nil, audiences: [String]? = nil,
        jwksURL: String? = nil, jwksRefreshSeconds: Int? = nil, requiredScopes: [String]? = nil, claimsToHeaders: [String: String]? = nil
    ) {
        self.keys = keys
        self.identityClaim = identityClaim
        self.leewaySeconds = leewaySeconds
        self.issuer = issuer
        self.audiences = audiences
        self.jwksURL = jwksURL
        self.jwksRefreshSeconds = jwksRefreshSeconds
        self.requiredScopes = requiredScopes
        self.claimsToHeaders = claimsToHeaders
    }

    static let defaultJWKSRefreshSeconds = 300

    /// The JWS algorithms the engine verifies (RFC 7518 §3.1, RFC 8037 for EdDSA with Ed25519).
    enum Algorithm: String, Sendable, Hashable, Codable, CaseIterable {
        case hs256 = "HS256"
        case hs384 = "HS384"
        case hs512 = "HS512"
        case rs256 = "RS256"
        case rs384 = "RS384"
        case rs512 = "RS512"
        case ps256 = "PS256"
        case ps384 = "PS384"
        case ps512 = "PS512"
        case es256 = "ES256"
        case es384 = "ES384"
        case es512 = "ES512"
        case eddsa = "EdDSA"

        /// What kind of key verifies it.
        enum KeyKind: Sendable {
            /// A shared secret, never taken from a key set URL.
            case secret
            case rsa
            case ecP256, ecP384, ecP521
            case ed25519
        }

        var keyKind: KeyKind {
            switch self {
            case .hs256, .hs384, .hs512: return .secret
            case .rs256, .rs384, .rs512, .ps256, .ps384, .ps512: return .rsa
            case .es256: return .ecP256
            case .es384: return .ecP384
            case .es512: return .ecP521
            case .eddsa: return .ed25519
            }
        }

        /// The algorithms a key of `kind` may verify, for a key set's key that names none.
        static func verified(by kind: KeyKind) -> [Algorithm] {
            allCases.filter { $0.keyKind == kind }
        }
    }

    /// One verification key. A token's `alg` must equal the key's algorithm; with a `kid`, only tokens
    /// naming that `kid` (or none) are tried against it.
    struct Key: Sendable, Hashable, Codable {
        var algorithm: Algorithm
        var kid: String?
        /// The shared secret, for HS256, HS384 and HS512 (at least 32, 48 and 64 bytes).
        var secret: String?
        /// A PEM `PUBLIC KEY`, for the other algorithms: RSA for RS* and PS*, an EC key on P-256, P-384 or
        /// P-521 for ES256, ES384 or ES512, Ed25519 for EdDSA.
        var publicKeyPEM: String?

        init(algorithm: Algorithm, kid: String? = nil, secret: String? = nil, publicKeyPEM: String? = nil) {
            self.algorithm = algorithm
            self.kid = kid
            self.secret = secret
            self.publicKeyPEM = publicKeyPEM
        }

        enum CodingKeys: String, CodingKey {
            case algorithm, kid, secret
            case publicKeyPEM = "public_key_pem"
        }
    }

    enum CodingKeys: String, CodingKey {
        case keys
        case identityClaim = "identity_claim"
        case leewaySeconds = "leeway_seconds"
        case issuer, audiences
        case jwksURL = "jwks_url"
        case jwksRefreshSeconds = "jwks_refresh_seconds"
        case requiredScopes = "required_scopes"
        case claimsToHeaders = "claims_to_headers"
    }
}

/// Which responses an API's cache keeps, and for how long.
struct CachePolicy: Sendable, Hashable, Codable {
    var enabled: Bool = false
    /// `GET` and/or `HEAD`.
    var methods: [String] = ["GET", "HEAD"]
    /// Longest time a response is kept; a backend `max-age` or `s-maxage` may shorten it.
    var ttlSeconds: Int = 60
    /// Statuses that may be stored.
    var statusCodes: [Int] = [200]
    /// Request headers (lower case) whose values are part of the cache key.
    var varyHeaders: [String] = []

    init(
        enabled: Bool = false, methods: [String] = ["GET", "HEAD"], ttlSeconds: Int = 60, statusCodes: [Int] = [200],
        varyHeaders: [String] = []
    ) {
        self.enabled = enabled
        self.methods = methods
        self.ttlSeconds = ttlSeconds
        self.statusCodes = statusCodes
        self.varyHeaders = varyHeaders
    }

    enum CodingKeys: String, CodingKey {
        case enabled, methods
        case ttlSeconds = "ttl_seconds"
        case statusCodes = "status_codes"
        case varyHeaders = "vary_headers"
    }
}

/// Every problem found in an API definition, each naming its field path.
struct APIDefinitionError: Error, Sendable, Hashable, CustomStringConvertible {
    var problems: [ConfigProblem]

    var description: String {
        let noun = problems.count == 1 ? "problem" : "problems"
        return "invalid API definition (\(problems.count) \(noun)):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

// MARK: - JSON

extension APIDefinition: Codable {
    /// Decodes strictly: unknown fields, wrong types and invalid values all throw ``APIDefinitionError``.
    init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        self = try Self.read(value)
    }

    /// Parses and validates a definition from JSON text.
    static func parse(json: some DataProtocol) throws(APIDefinitionError) -> APIDefinition {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw APIDefinitionError(problems: [
                ConfigProblem(key: "(document)", value: nil, expected: "a JSON object (\(Self.describe(error)))")
            ])
        }
        return try read(value)
    }

    /// Reads and validates a parsed JSON value.
    static func read(_ value: JSONValue) throws(APIDefinitionError) -> APIDefinition {
        let problems = ProblemCollector()
        let definition = Self.read(value, problems: problems)
        if let definition {
            // Semantic checks, skipping fields that already failed to read.
            for problem in definition.validate() where !problems.hasProblem(at: problem.key) {
                problems.report(problem.key, shown: problem.value, expected: problem.expected)
            }
        }
        guard let definition, problems.problems.isEmpty else {
            throw APIDefinitionError(problems: problems.problems)
        }
        return definition
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(listenPath, forKey: .listenPath)
        try c.encode(hosts, forKey: .hosts)
        try c.encode(stripListenPath, forKey: .stripListenPath)
        try c.encodeIfPresent(methods, forKey: .methods)
        try c.encodeIfPresent(maxBodyBytes, forKey: .maxBodyBytes)
        try c.encode(targets, forKey: .targets)
        try c.encodeIfPresent(retryOnStatus, forKey: .retryOnStatus)
        try c.encodeIfPresent(healthCheck, forKey: .healthCheck)
        try c.encode(timeouts, forKey: .timeouts)
        try c.encode(auth, forKey: .auth)
        try c.encodeIfPresent(rateLimit, forKey: .rateLimit)
        try c.encodeIfPresent(quota, forKey: .quota)
        try c.encode(cache, forKey: .cache)
        try c.encodeIfPresent(ipAccess, forKey: .ipAccess)
        try c.encodeIfPresent(cors, forKey: .cors)
        try c.encodeIfPresent(requestHeaders, forKey: .requestHeaders)
        try c.encodeIfPresent(responseHeaders, forKey: .responseHeaders)
        try c.encode(active, forKey: .active)
    }

    /// The definition as canonical JSON: sorted keys, defaults written out. Equal definitions give equal bytes.
    func canonicalJSON() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, numbers and arrays cannot fail.
        return (try? Array(encoder.encode(self))) ?? []
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError.map { "\($0.localizedDescription)" }) ?? context.debugDescription
        }
        return "\(error)"
    }

    private static let fieldNames = CodingKeys.allNames

    private static func read(_ value: JSONValue, problems: ProblemCollector) -> APIDefinition? {
        guard let r = JSONObjectReader(value, path: "", known: fieldNames, problems: problems) else { return nil }
        let id = r.requiredString("id", expected: "an id of 1-64 characters a-z, 0-9, '.', '_' or '-'") ?? ""
        let name = r.string("name") ?? id
        let listenPath = r.string("listen_path").map(Self.normalizedPath)
        let hosts = (r.stringArray("hosts") ?? []).map { $0.lowercased() }
        let strip = r.bool("strip_listen_path", default: false)
        let methods = r.stringArray("methods")?.map { $0.uppercased() }
        let maxBodyBytes = r.optionalInt("max_body_bytes", in: 0...(1 << 32))
        var targets: [Target] = []
        if let items = r.array("targets") {
            for (path, item) in items {
                guard let t = JSONObjectReader(item, path: path, known: ["url", "weight"], problems: problems) else { continue }
                let url = t.requiredString("url", expected: "an http:// or https:// URL") ?? ""
                let weight = t.int("weight", default: 1, in: 0...1000) ?? 1
                targets.append(Target(url: url, weight: weight))
            }
        } else if r.value("targets") == nil {
            problems.report("targets", nil, expected: "an array of at least one target")
        }
        let retryOnStatus = r.array("retry_on_status")?.compactMap { path, item -> Int? in
            guard case .number(let n) = item, n.rounded() == n, (500...599).contains(n) else {
                problems.report(path, item, expected: "a server error status in 500...599")
                return nil
            }
            return Int(n)
        }
        var healthCheck: HealthCheck?
        if let h = r.object(
            "health_check", known: ["path", "interval_seconds", "timeout_ms", "healthy_threshold", "unhealthy_threshold", "expected_status"])
        {
            healthCheck = HealthCheck(
                path: h.requiredString("path", expected: "a path such as /healthz") ?? "/",
                intervalSeconds: h.int("interval_seconds", default: 5, in: 1...3600) ?? 5,
                timeoutMilliseconds: h.int("timeout_ms", default: 1_000, in: 1...60_000) ?? 1_000,
                healthyThreshold: h.int("healthy_threshold", default: 2, in: 1...100) ?? 2,
                unhealthyThreshold: h.int("unhealthy_threshold", default: 3, in: 1...100) ?? 3,
                expectedStatus: h.string("expected_status") ?? "200-399")
        }
        var timeouts = Timeouts()
        if let t = r.object("timeouts", known: ["connect_ms", "response_ms"]) {
            timeouts.connectMilliseconds = t.int("connect_ms", default: 2_000, in: 1...600_000) ?? 2_000
            timeouts.responseMilliseconds = t.int("response_ms", default: 30_000, in: 1...3_600_000) ?? 30_000
        }
        var auth = Auth()
        if let a = r.object("auth", known: ["mode", "key_header", "jwt", "forward_credentials"]) {
            auth.mode = a.choice("mode", default: AuthMode.keyless) ?? .keyless
            auth.keyHeader = (a.string("key_header") ?? "x-api-key").lowercased()
            auth.forwardCredentials = a.optionalBool("forward_credentials")
            if let j = a.object(
                "jwt",
                known: [
                    "keys", "identity_claim", "leeway_seconds", "issuer", "audiences", "jwks_url", "jwks_refresh_seconds", "required_scopes",
                    "claims_to_headers",
                ])
            {
                var keys: [JWTSettings.Key] = []
                for (path, item) in j.array("keys") ?? [] {
                    guard
                        let k = JSONObjectReader(
                            item, path: path, known: ["algorithm", "kid", "secret", "public_key_pem"], problems: problems)
                    else { continue }
                    let algorithm: JWTSettings.Algorithm? = k.choice("algorithm", default: nil)
                    keys.append(
                        JWTSettings.Key(
                            algorithm: algorithm ?? .hs256, kid: k.string("kid"), secret: k.string("secret"),
                            publicKeyPEM: k.string("public_key_pem")))
                }
                auth.jwt = JWTSettings(
                    keys: keys, identityClaim: j.string("identity_claim") ?? "sub",
                    leewaySeconds: j.int("leeway_seconds", default: 30, in: 0...3600) ?? 30, issuer: j.string("issuer"),
                    audiences: j.stringArray("audiences"), jwksURL: j.string("jwks_url"),
                    jwksRefreshSeconds: j.optionalInt("jwks_refresh_seconds", in: 10...86_400), requiredScopes: j.stringArray("required_scopes"),
                    claimsToHeaders: j.stringMap("claims_to_headers"))
            }
        }
        var rateLimit: RateLimit?
        if let l = r.object("rate_limit", known: ["rate", "period_seconds", "burst", "fail_mode"]) {
            let rate = l.int("rate", default: nil, in: 1...1_000_000_000) ?? 1
            rateLimit = RateLimit(
                rate: rate, periodSeconds: l.int("period_seconds", default: 1, in: 1...31_536_000) ?? 1,
                burst: l.int("burst", default: rate, in: 1...1_000_000_000) ?? rate,
                failMode: l.choice("fail_mode", default: RateLimitFailMode.closed) ?? .closed)
        }
        var quota: QuotaPolicy?
        if let q = r.object("quota", known: ["limit", "period_seconds"]) {
            quota = QuotaPolicy(
                limit: q.int("limit", default: nil, in: 1...Int(Int32.max)) ?? 1,
                periodSeconds: q.int("period_seconds", default: nil, in: 1...31_536_000) ?? 1)
        }
        var cache = CachePolicy()
        if let c = r.object("cache", known: ["enabled", "methods", "ttl_seconds", "status_codes", "vary_headers"]) {
            cache.enabled = c.bool("enabled", default: true)
            cache.methods = (c.stringArray("methods") ?? cache.methods).map { $0.uppercased() }
            cache.ttlSeconds = c.int("ttl_seconds", default: 60, in: 1...31_536_000) ?? 60
            if let items = c.array("status_codes") {
                cache.statusCodes = items.compactMap { path, item in
                    guard case .number(let n) = item, n.rounded() == n, (200...599).contains(n) else {
                        problems.report(path, item, expected: "an HTTP status code in 200...599")
                        return nil
                    }
                    return Int(n)
                }
            }
            cache.varyHeaders = (c.stringArray("vary_headers") ?? []).map { $0.lowercased() }
        }
        var ipAccess: IPAccess?
        if let a = r.object("ip_access", known: ["allow", "deny"]) {
            ipAccess = IPAccess(allow: a.stringArray("allow"), deny: a.stringArray("deny"))
        }
        var cors: CORS?
        if let c = r.object(
            "cors", known: ["allow_origins", "allow_methods", "allow_headers", "expose_headers", "allow_credentials", "max_age_seconds"])
        {
            cors = CORS(
                allowOrigins: (c.stringArray("allow_origins") ?? []).map { $0.lowercased() },
                allowMethods: c.stringArray("allow_methods")?.map { $0.uppercased() },
                allowHeaders: c.stringArray("allow_headers")?.map { $0.lowercased() }, exposeHeaders: c.stringArray("expose_headers"),
                allowCredentials: c.optionalBool("allow_credentials"), maxAgeSeconds: c.optionalInt("max_age_seconds", in: 0...86_400))
        }
        var requestHeaders: RequestHeaders?
        if let h = r.object("request_headers", known: ["set", "remove"]) {
            requestHeaders = RequestHeaders(set: h.stringMap("set"), remove: h.stringArray("remove"))
        }
        var responseHeaders: ResponseHeaders?
        if let h = r.object("response_headers", known: ["add", "remove"]) {
            responseHeaders = ResponseHeaders(add: h.stringMap("add"), remove: h.stringArray("remove"))
        }
        let active = r.bool("active", default: true)
        return APIDefinition(
            id: id, name: name, listenPath: listenPath, hosts: hosts, stripListenPath: strip, methods: methods, maxBodyBytes: maxBodyBytes,
            targets: targets, retryOnStatus: retryOnStatus,
            healthCheck: healthCheck,
            timeouts: timeouts, auth: auth, rateLimit: rateLimit, quota: quota, cache: cache, ipAccess: ipAccess, cors: cors,
            requestHeaders: requestHeaders, responseHeaders: responseHeaders, active: active)
    }

    /// `/a/b/` → `/a/b`; `/` stays `/`.
    static func normalizedPath(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        return String(p)
    }
}

extension APIDefinition.CodingKeys: CaseIterable {
    static var allNames: [String] { allCases.map(\.stringValue) }
}

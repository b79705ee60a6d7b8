import Foundation
import GatewayCore

extension APIDefinition {
    /// Every semantic problem with this definition, each naming its field path
    /// (for example `targets[1].url: "ftp://x" is invalid: expected an http:// or https:// URL`). Empty when valid.
    func validate() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func report(_ key: String, _ value: String?, _ expected: String) {
            problems.append(ConfigProblem(key: key, value: value, expected: expected))
        }

        if !Self.isValidID(id) {
            report("id", id, "an id of 1-64 characters a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
        }
        if name.count > 200 { report("name", String(name.prefix(40)) + "…", "at most 200 characters") }

        if let listenPath {
            if let expected = Self.listenPathProblem(listenPath) { report("listen_path", listenPath, expected) }
        } else if hosts.isEmpty {
            report("listen_path", nil, "a path prefix such as /orders (or at least one entry in hosts)")
        }
        for (i, host) in hosts.enumerated() where !Self.isValidHostPattern(host) {
            report("hosts[\(i)]", host, "a host name such as api.example.com or a wildcard such as *.example.com")
        }
        if Set(hosts).count != hosts.count { report("hosts", hosts.joined(separator: ","), "no duplicate hosts") }

        if let methods {
            if methods.isEmpty { report("methods", nil, "at least one method such as GET (leave methods out to take every method)") }
            for (i, method) in methods.enumerated() where !Self.isToken(method) {
                report("methods[\(i)]", method, "a method such as GET or POST")
            }
        }
        if let cors {
            if cors.allowOrigins.isEmpty { report("cors.allow_origins", nil, "at least one origin (https://app.example.com) or *") }
            for (i, origin) in cors.allowOrigins.enumerated() where origin != "*" && !Self.isOrigin(origin) {
                report(
                    "cors.allow_origins[\(i)]", origin, "an origin: a scheme and host with an optional port, no path (https://app.example.com), or *")
            }
            if cors.allowCredentials == true && cors.allowOrigins.contains("*") {
                report("cors.allow_origins", "*", "named origins when allow_credentials is true (browsers refuse * with credentials)")
            }
            for (name, list) in [("allow_methods", cors.allowMethods), ("allow_headers", cors.allowHeaders), ("expose_headers", cors.exposeHeaders)] {
                for (i, token) in (list ?? []).enumerated() where !Self.isToken(token) {
                    report("cors.\(name)[\(i)]", token, name == "allow_methods" ? "a method such as GET" : "a header name")
                }
            }
            if let age = cors.maxAgeSeconds, !(0...86_400).contains(age) { report("cors.max_age_seconds", String(age), "an integer in 0...86400") }
        }
        for (name, value) in (requestHeaders?.set ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let expected = Self.rewritableFieldProblem(name) { report("request_headers.set.\(name)", name, expected) }
            if !Self.isFieldValue(value) { report("request_headers.set.\(name)", value, "a value without control characters") }
        }
        for (i, name) in (requestHeaders?.remove ?? []).enumerated() {
            if let expected = Self.rewritableFieldProblem(name) { report("request_headers.remove[\(i)]", name, expected) }
        }
        for (name, value) in (responseHeaders?.add ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let expected = Self.rewritableFieldProblem(name) { report("response_headers.add.\(name)", name, expected) }
            if !Self.isFieldValue(value) { report("response_headers.add.\(name)", value, "a value without control characters") }
        }
        for (i, name) in (responseHeaders?.remove ?? []).enumerated() {
            if let expected = Self.rewritableFieldProblem(name) { report("response_headers.remove[\(i)]", name, expected) }
        }
        if let ipAccess {
            for (name, list) in [("allow", ipAccess.allow), ("deny", ipAccess.deny)] {
                guard let list else { continue }
                if name == "allow" && list.isEmpty {
                    report("ip_access.allow", nil, "at least one address or range (leave allow out to let every address)")
                }
                for (i, entry) in list.enumerated() where (try? AddressRanges(parsing: [entry])) == nil {
                    report("ip_access.\(name)[\(i)]", entry, "an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32")
                }
            }
        }
        if targets.isEmpty {
            report("targets", nil, "an array of at least one target")
        } else {
            for (i, target) in targets.enumerated() {
                if case .failure(let problem) = BackendURL.parse(target.url) {
                    report("targets[\(i)].url", target.url, problem.expected)
                }
                if !(0...1000).contains(target.weight) {
                    report("targets[\(i)].weight", String(target.weight), "an integer in 0...1000")
                }
            }
            if targets.allSatisfy({ $0.weight == 0 }) {
                report("targets", nil, "at least one target with a weight above 0")
            }
        }

        if let check = healthCheck {
            if !check.path.hasPrefix("/") || check.path.contains(where: { $0 == " " || $0 == "#" }) {
                report("health_check.path", check.path, "a path such as /healthz (with an optional ?query)")
            }
            if !(1...3600).contains(check.intervalSeconds) {
                report("health_check.interval_seconds", String(check.intervalSeconds), "an integer in 1...3600")
            }
            if !(1...60_000).contains(check.timeoutMilliseconds) || check.timeoutMilliseconds > check.intervalSeconds * 1000 {
                report("health_check.timeout_ms", String(check.timeoutMilliseconds), "an integer in 1...60000, at most the interval")
            }
            for (name, value) in [("healthy_threshold", check.healthyThreshold), ("unhealthy_threshold", check.unhealthyThreshold)]
            where !(1...100).contains(value) {
                report("health_check.\(name)", String(value), "an integer in 1...100")
            }
            if StatusMatcher(check.expectedStatus) == nil {
                report("health_check.expected_status", check.expectedStatus, "statuses such as 200, 200-399, 2xx or 200,204")
            }
        }
        if !(1...600_000).contains(timeouts.connectMilliseconds) {
            report("timeouts.connect_ms", String(timeouts.connectMilliseconds), "an integer in 1...600000")
        }
        if !(1...3_600_000).contains(timeouts.responseMilliseconds) {
            report("timeouts.response_ms", String(timeouts.responseMilliseconds), "an integer in 1...3600000")
        }

        if !Self.isToken(auth.keyHeader) { report("auth.key_header", auth.keyHeader, "an HTTP header name") }
        if auth.mode == .jwt {
            if let jwt = auth.jwt {
                problems += jwt.validate(path: "auth.jwt")
            } else {
                report("auth.jwt", nil, "JWT settings (keys, identity_claim) when auth.mode is jwt")
            }
        }

        if let rateLimit {
            if rateLimit.rate < 1 { report("rate_limit.rate", String(rateLimit.rate), "an integer of at least 1") }
            if rateLimit.periodSeconds < 1 {
                report("rate_limit.period_seconds", String(rateLimit.periodSeconds), "an integer of at least 1")
            }
            if rateLimit.burst < 1 { report("rate_limit.burst", String(rateLimit.burst), "an integer of at least 1") }
        }
        if let quota {
            if quota.limit < 1 { report("quota.limit", String(quota.limit), "an integer of at least 1") }
            if quota.periodSeconds < 1 {
                report("quota.period_seconds", String(quota.periodSeconds), "an integer of at least 1")
            }
        }

        for (i, method) in cache.methods.enumerated() where method != "GET" && method != "HEAD" {
            report("cache.methods[\(i)]", method, "GET or HEAD")
        }
        if cache.enabled && cache.methods.isEmpty { report("cache.methods", nil, "at least one of GET, HEAD") }
        if cache.ttlSeconds < 1 { report("cache.ttl_seconds", String(cache.ttlSeconds), "an integer of at least 1") }
        for (i, status) in (retryOnStatus ?? []).enumerated() where !(500...599).contains(status) {
            report("retry_on_status[\(i)]", String(status), "a server error status in 500...599")
        }
        for (i, status) in cache.statusCodes.enumerated() where !(200...599).contains(status) {
            report("cache.status_codes[\(i)]", String(status), "an HTTP status code in 200...599")
        }
        for (i, header) in cache.varyHeaders.enumerated() where !Self.isToken(header) {
            report("cache.vary_headers[\(i)]", header, "an HTTP header name")
        }
        return problems
    }

    /// The definition with JWT shared secrets replaced by `***`, for showing through the admin API.
    /// (Writing it back fails validation rather than storing the placeholder as a secret.)
    func redactingSecrets() -> APIDefinition {
        var copy = self
        if var jwt = copy.auth.jwt {
            for i in jwt.keys.indices where jwt.keys[i].secret != nil {
                jwt.keys[i].secret = "***"
            }
            copy.auth.jwt = jwt
        }
        return copy
    }

    /// Throws every problem, if any.
    func validated() throws(APIDefinitionError) -> APIDefinition {
        let problems = validate()
        if !problems.isEmpty { throw APIDefinitionError(problems: problems) }
        return self
    }

    static func isValidID(_ id: String) -> Bool {
        guard (1...64).contains(id.utf8.count), let first = id.utf8.first, isLowerAlnum(first) else { return false }
        return id.utf8.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isLowerAlnum(_ b: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
    }

    /// Why `path` is not a usable listen path, or nil if it is.
    static func listenPathProblem(_ path: String) -> String? {
        let expected = "a path prefix starting with / such as /orders/v1"
        guard path.hasPrefix("/") else { return expected }
        if path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            return expected + ", without spaces, query or fragment"
        }
        if path != "/" {
            let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
            if segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                return expected + ", without empty, . or .. segments"
            }
        }
        return nil
    }

    /// `api.example.com` or `*.example.com`: lower-case labels of letters, digits and hyphens.
    static func isValidHostPattern(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasPrefix("*.") { name = name.dropFirst(2) }
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
        }
    }

    /// Why a field may not be set, added or removed by an API's header rules: framing, routing and
    /// hop-by-hop fields, and the ones the engine writes itself, are the engine's.
    static func rewritableFieldProblem(_ name: String) -> String? {
        guard isToken(name) else { return "a header name" }
        let engines = [
            "Host", "Content-Length", RequestID.headerName, "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", HopByHop.gatewayClientID,
        ]
        guard HopByHop.isHopByHop(name) || engines.contains(where: { $0.lowercased() == name.lowercased() }) else { return nil }
        return "another field: \(name) is set by the engine itself"
    }

    /// A field value: visible characters, spaces and tabs.
    static func isFieldValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    /// `scheme://host[:port]`, as a browser sends it in `Origin` (lower case).
    static func isOrigin(_ s: String) -> Bool {
        guard let schemeEnd = s.range(of: "://") else { return false }
        let scheme = s[..<schemeEnd.lowerBound]
        let authority = s[schemeEnd.upperBound...]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }) else { return false }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("?"), !authority.contains("#") else { return false }
        return authority.allSatisfy { $0.isASCII && !$0.isWhitespace }
    }

    /// An RFC 9110 token (header names).
    static func isToken(_ s: String) -> Bool {
        !s.isEmpty
            && s.utf8.allSatisfy { b in
                isLowerAlnum(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) || "!#$%&'*+-.^_`|~".utf8.contains(b)
            }
    }
}

extension JWTSettings {
    func validate(path: String) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if keys.isEmpty && jwksURL == nil {
            problems.append(ConfigProblem(key: "\(path).keys", value: nil, expected: "at least one verification key, or a jwks_url"))
        }
        if let jwksURL, (try? AdminHTTPClient.parse(jwksURL)) == nil {
            problems.append(ConfigProblem(key: "\(path).jwks_url", value: jwksURL, expected: "an http:// or https:// URL of a JWK Set"))
        }
        if let seconds = jwksRefreshSeconds {
            if jwksURL == nil {
                problems.append(
                    ConfigProblem(key: "\(path).jwks_refresh_seconds", value: String(seconds), expected: "nothing unless jwks_url is set"))
            } else if !(10...86_400).contains(seconds) {
                problems.append(ConfigProblem(key: "\(path).jwks_refresh_seconds", value: String(seconds), expected: "an integer in 10...86400"))
            }
        }
        if let issuer, issuer.isEmpty {
            problems.append(ConfigProblem(key: "\(path).issuer", value: "", expected: "the issuer tokens must name in iss"))
        }
        if let audiences, audiences.isEmpty || audiences.contains(where: \.isEmpty) {
            problems.append(
                ConfigProblem(
                    key: "\(path).audiences", value: audiences.joined(separator: ","),
                    expected: "a non-empty array of non-empty audiences, one of which a token's aud must name"))
        }
        if let requiredScopes {
            if requiredScopes.isEmpty {
                problems.append(
                    ConfigProblem(key: "\(path).required_scopes", value: nil, expected: "at least one scope (leave it out to require none)"))
            }
            for (i, scope) in requiredScopes.enumerated() where !Self.isScopeToken(scope) {
                problems.append(
                    ConfigProblem(
                        key: "\(path).required_scopes[\(i)]", value: scope,
                        expected: "a scope: visible characters other than \\ and \" (RFC 6749 §3.3), such as orders:read"))
            }
        }
        if let claimsToHeaders {
            var seen = Set<String>()
            for (claim, field) in claimsToHeaders.sorted(by: { $0.key < $1.key }) {
                if claim.isEmpty { problems.append(ConfigProblem(key: "\(path).claims_to_headers", value: "", expected: "claim names")) }
                if let expected = APIDefinition.rewritableFieldProblem(field) {
                    problems.append(ConfigProblem(key: "\(path).claims_to_headers.\(claim)", value: field, expected: expected))
                } else if !seen.insert(field.lowercased()).inserted {
                    problems.append(
                        ConfigProblem(key: "\(path).claims_to_headers.\(claim)", value: field, expected: "a field no other claim is sent in"))
                }
            }
        }
        for (i, key) in keys.enumerated() {
            let keyPath = "\(path).keys[\(i)]"
            if let problem = JWTVerifier.keyProblem(key) {
                problems.append(ConfigProblem(key: "\(keyPath).\(problem.field)", value: problem.shown, expected: problem.expected))
            }
        }
        if identityClaim.isEmpty {
            problems.append(ConfigProblem(key: "\(path).identity_claim", value: "", expected: "a claim name such as sub"))
        }
        if !(0...3600).contains(leewaySeconds) {
            problems.append(ConfigProblem(key: "\(path).leeway_seconds", value: String(leewaySeconds), expected: "an integer in 0...3600"))
        }
        return problems
    }

    /// An OAuth scope token (RFC 6749 §3.3): one or more of `%x21 / %x23-5B / %x5D-7E`.
    static func isScopeToken(_ scope: String) -> Bool {
        !scope.isEmpty && scope.utf8.allSatisfy { $0 == 0x21 || (0x23...0x5B).contains($0) || (0x5D...0x7E).contains($0) }
    }
}

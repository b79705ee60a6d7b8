import Crypto
import GatewayCore

/// The immutable routing table of one set of API definitions.
///
/// A request is matched by host first (exact names, then `*.example.com` wildcards, longest first, then
/// APIs without hosts), and within a host group by the longest listen path that is a prefix of the
/// request path on a segment boundary (`/api` matches `/api` and `/api/x`, not `/apix`). A host group
/// with no matching path falls through to the next group. Inactive APIs are left out.
///
/// A change builds a new table and swaps it in whole (``RouteTableHolder``); requests in flight keep
/// the table they started with.
final class RouteTable: Sendable {
    /// SHA-256 hex of the canonical JSON of every definition (active or not), sorted by id. Equal sets of
    /// definitions give equal versions on every engine, so drift between nodes is visible.
    let version: String
    /// Every definition the table was built from, sorted by id.
    let definitions: [APIDefinition]
    /// The active APIs by id.
    let routes: [String: APIRoute]
    /// Routes left out because an API with a lower id already claimed the same host and listen path.
    let conflicts: [String]

    private let exactHosts: [String: PathIndex]
    /// Wildcards by suffix (`.example.com`), longest suffix first.
    private let wildcardHosts: [(suffix: String, index: PathIndex)]
    private let anyHost: PathIndex

    /// A table with no APIs.
    static let empty = RouteTable(definitions: [])

    /// Builds the table.
    ///
    /// - Parameters:
    ///   - definitions: the definitions; invalid ones should have been rejected before they got here.
    ///   - previous: the table being replaced; routes with unchanged targets keep its balancers.
    ///   - now: the monotonic clock for the balancers.
    ///   - metrics: where each route's request metrics come from, for a table that will serve requests;
    ///     nil for one built only to be checked.
    ///   - jwksClient: how JWT APIs' key sets (`jwks_url`) are fetched, for a table that will serve
    ///     requests; nil for one built only to be checked (nothing is fetched).
    init(
        definitions: [APIDefinition], previous: RouteTable? = nil,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, metrics: EngineMetrics? = nil,
        jwksClient: JWKSClient? = nil
    ) {
        let sorted = definitions.sorted { $0.id < $1.id }
        self.definitions = sorted
        self.version = Self.version(of: sorted)

        var routes: [String: APIRoute] = [:]
        var exact: [String: [String: APIRoute]] = [:]
        var wildcard: [String: [String: APIRoute]] = [:]
        var any: [String: APIRoute] = [:]
        var conflicts: [String] = []
        for definition in sorted where definition.active && routes[definition.id] == nil {
            let route = Self.makeRoute(
                definition, previous: previous?.routes[definition.id], now: now, metrics: metrics, jwksClient: jwksClient)
            let prefix = definition.listenPath ?? "/"
            func claim(_ table: inout [String: APIRoute], host: String) {
                if let owner = table[prefix] {
                    conflicts.append("\(definition.id): host \(host) and listen path \(prefix) already used by \(owner.id)")
                } else {
                    table[prefix] = route
                }
            }
            if definition.hosts.isEmpty {
                claim(&any, host: "*")
            }
            for host in definition.hosts {
                if host.hasPrefix("*.") {
                    claim(&wildcard[String(host.dropFirst()), default: [:]], host: host)
                } else {
                    claim(&exact[host, default: [:]], host: host)
                }
            }
            routes[definition.id] = route
        }
        self.routes = routes
        self.conflicts = conflicts
        self.exactHosts = exact.mapValues(PathIndex.init)
        self.wildcardHosts = wildcard.map { ($0.key, PathIndex(prefixes: $0.value)) }.sorted { $0.suffix.count > $1.suffix.count }
        self.anyHost = PathIndex(prefixes: any)
    }

    /// The API for a request, or nil if none matches.
    ///
    /// - Parameters:
    ///   - host: the `Host` header (or `:authority`); case and port are ignored.
    ///   - path: the request path without the query.
    func match(host: String?, path: String) -> RouteMatch? {
        let path = path.isEmpty ? "/" : path
        // Without host-bound APIs (the usual case) the host need not be normalized at all.
        if !exactHosts.isEmpty || !wildcardHosts.isEmpty, let host = host.map(Self.normalizedHost), !host.isEmpty {
            if let index = exactHosts[host], let match = index.match(path) { return match }
            for (suffix, index) in wildcardHosts
            where host.utf8.count > suffix.utf8.count && host.utf8.suffix(suffix.utf8.count).elementsEqual(suffix.utf8) {
                if let match = index.match(path) { return match }
            }
        }
        return anyHost.match(path)
    }

    /// Lower case, without the port or a trailing dot.
    static func normalizedHost(_ host: String) -> String {
        if let plain = normalizedASCIIHost(host) { return plain }
        var h = Substring(host)
        if h.hasPrefix("[") {
            if let close = h.firstIndex(of: "]") { h = h[...close] }
        } else if let colon = h.lastIndex(of: ":") {
            h = h[..<colon]
        }
        if h.hasSuffix(".") { h = h.dropLast() }
        return h.lowercased()
    }

    /// ``normalizedHost(_:)`` for the usual `name[:port]` in ASCII without a bracket, byte by byte; nil
    /// for anything else.
    static func normalizedASCIIHost(_ host: String) -> String? {
        let bytes = host.utf8
        var end = bytes.endIndex
        var needsLowercasing = false
        for i in bytes.indices {
            let c = bytes[i]
            if c >= 0x80 || c == UInt8(ascii: "[") { return nil }
            if c == UInt8(ascii: ":") {
                end = i
                break
            }
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { needsLowercasing = true }
        }
        if end > bytes.startIndex && bytes[bytes.index(before: end)] == UInt8(ascii: ".") { end = bytes.index(before: end) }
        let name = end == bytes.endIndex ? host : String(host[..<end])
        return needsLowercasing ? name.lowercased() : name
    }

    static func version(of sortedDefinitions: [APIDefinition]) -> String {
        var hasher = SHA256()
        for definition in sortedDefinitions {
            hasher.update(data: definition.canonicalJSON())
            hasher.update(data: [0x0a])
        }
        return hasher.finalize().hexString
    }

    private static func makeRoute(
        _ definition: APIDefinition, previous: APIRoute?, now: @escaping @Sendable () -> ContinuousClock.Instant,
        metrics: EngineMetrics?, jwksClient: JWKSClient?
    ) -> APIRoute {
        let balancer: TargetBalancer
        if let previous, previous.definition.targets == definition.targets {
            balancer = previous.balancer
        } else {
            let targets = definition.targets.compactMap { target -> (url: BackendURL, weight: Int)? in
                guard case .success(let url) = BackendURL.parse(target.url) else { return nil }
                return (url, target.weight)
            }
            balancer = TargetBalancer(targets: targets, now: now)
        }
        var verifier: JWTVerifier?
        if definition.auth.mode == .jwt, let jwt = definition.auth.jwt {
            if let previous, let old = previous.jwtVerifier, old.settings == jwt {
                verifier = old
            } else {
                verifier = JWTVerifier(settings: jwt, jwksClient: jwksClient)
            }
        }
        return APIRoute(
            definition: definition, balancer: balancer, jwtVerifier: verifier, metrics: previous?.metrics ?? metrics?.api(definition.id),
            engineMetrics: metrics)
    }
}

/// Listen paths of one host group, matched longest first on segment boundaries.
private struct PathIndex: Sendable {
    let prefixes: [String: APIRoute]
    /// Bit n is set when some listen path is n bytes long (n < 64): a candidate of another length is
    /// not looked up (no string made, none hashed). Longer listen paths are always looked up.
    private let lengths: UInt64
    private let hasLongPrefixes: Bool

    init(prefixes: [String: APIRoute]) {
        self.prefixes = prefixes
        var lengths: UInt64 = 0
        var hasLong = false
        for prefix in prefixes.keys {
            let n = prefix.utf8.count
            if n < 64 { lengths |= 1 << UInt64(n) } else { hasLong = true }
        }
        self.lengths = lengths
        self.hasLongPrefixes = hasLong
    }

    private func mayHold(length n: Int) -> Bool {
        n < 64 ? lengths & (1 << UInt64(n)) != 0 : hasLongPrefixes
    }

    /// Tries the path, then each shorter prefix ending at a `/`: `/a/b/c`, `/a/b`, `/a`, `/`. (Byte
    /// offsets on the UTF-8 view: `/` is one byte and never part of another character.)
    func match(_ path: String) -> RouteMatch? {
        guard !prefixes.isEmpty else { return nil }
        let bytes = path.utf8
        var end = bytes.endIndex
        while true {
            let length = bytes.distance(from: bytes.startIndex, to: end)
            if mayHold(length: length) {
                let candidate = end == bytes.endIndex ? path : String(path[..<end])
                if let route = prefixes[candidate] {
                    return RouteMatch(
                        route: route, matchedPrefix: candidate, forwardedPath: forwarded(path, route, prefixLength: length, prefixEnd: end))
                }
            }
            guard length > 1, let slash = bytes[..<end].lastIndex(of: UInt8(ascii: "/")) else { return nil }
            end = slash == bytes.startIndex ? bytes.index(after: slash) : slash
        }
    }

    /// The path without the listen path when the API strips it. A listen path starts with `/`, so one
    /// byte long it is `/` itself, which is never stripped.
    private func forwarded(_ path: String, _ route: APIRoute, prefixLength: Int, prefixEnd: String.Index) -> String {
        guard route.definition.stripListenPath, prefixLength > 1 else { return path }
        return prefixEnd == path.endIndex ? "/" : String(path[prefixEnd...])
    }
}

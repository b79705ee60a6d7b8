import GatewayCore
import NIOHTTP1

/// An active API as the data plane uses it: its definition plus the live objects built from it.
///
/// Built once per route table; a route whose targets (or JWT settings) did not change between two
/// tables keeps the same balancer (or verifier), so passive health survives a reload.
final class APIRoute: Sendable {
    let definition: APIDefinition
    let balancer: TargetBalancer
    /// Set when the API's auth mode is JWT.
    let jwtVerifier: JWTVerifier?
    /// The API's request metrics, looked up once when a serving table is built, so a request finds them
    /// without a lock or a lookup; nil in tables built only to be checked (no series for an API that
    /// may be refused).
    let metrics: EngineMetrics.API?
    /// The engine's metrics, for the backend failures this route's forwards meet (nil with ``metrics``).
    let engineMetrics: EngineMetrics?
    /// The API's `ip_access` lists, parsed; nil when it has none.
    let ipAccess: IPAccessRules?
    /// The API's `cors`, prepared; nil when it has none.
    let cors: CORSRules?
    /// Whether requests go to the backend as the client sent them (no credential to remove, no
    /// `request_headers`): the fast path's test.
    let forwardsHeadAsIs: Bool
    /// The methods the API takes (`HEAD` with `GET`), and its `Allow` value; nil when it takes every one.
    let methods: (allowed: Set<String>, allow: String)?
    /// `response_headers.add`, ready to add to every answer (empty when none).
    let addedResponseHeaders: HTTPHeaders
    /// Backend response fields left out (lowercased): `response_headers.remove`, and with `cors` the
    /// backend's own CORS fields; nil when none are.
    let removedResponseFields: [String]?
    /// `retry_on_status`, as the plans carry it.
    let retryOnStatus: ServerErrorStatuses

    /// How long a target that refused a connection is left out of its API's rotation.
    static let targetRetryAfter: Duration = .seconds(5)

    init(
        definition: APIDefinition, balancer: TargetBalancer, jwtVerifier: JWTVerifier?, metrics: EngineMetrics.API? = nil,
        engineMetrics: EngineMetrics? = nil
    ) {
        self.definition = definition
        self.balancer = balancer
        self.jwtVerifier = jwtVerifier
        self.metrics = metrics
        self.engineMetrics = engineMetrics
        self.ipAccess = definition.ipAccess.map(IPAccessRules.init)
        self.cors = definition.cors.map(CORSRules.init)
        self.methods = definition.methods.map { listed in
            var allowed = Set(listed)
            if allowed.contains("GET") { allowed.insert("HEAD") }
            var names = listed
            if allowed.contains("HEAD") && !names.contains("HEAD") { names.append("HEAD") }
            return (allowed, names.joined(separator: ", "))
        }
        self.forwardsHeadAsIs = definition.auth.mode == .keyless && definition.requestHeaders == nil
        self.addedResponseHeaders = HTTPHeaders((definition.responseHeaders?.add ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        var removed = (definition.responseHeaders?.remove ?? []).map { $0.lowercased() }
        if definition.cors != nil { removed += CORSRules.fieldNames }
        var seen = Set<String>()
        removed = removed.filter { seen.insert($0).inserted }
        self.removedResponseFields = removed.isEmpty ? nil : removed
        self.retryOnStatus = ServerErrorStatuses(definition.retryOnStatus ?? [])
    }

    var id: String { definition.id }
}

/// An API's `ip_access`, parsed once per route.
struct IPAccessRules: Sendable {
    let allow: AddressRanges?
    let deny: AddressRanges

    /// The lists parse: every definition a route is built from was validated when it was read (from the
    /// admin API, Redis or the seed file), entry by entry.
    init(_ access: APIDefinition.IPAccess) {
        allow = access.allow.map { (try? AddressRanges(parsing: $0)) ?? AddressRanges() }
        deny = (try? AddressRanges(parsing: access.deny ?? [])) ?? AddressRanges()
    }

    /// Whether a client at `address` may call the API.
    func permits(_ address: String) -> Bool {
        if deny.contains(address) { return false }
        guard let allow else { return true }
        return allow.contains(address)
    }
}

extension APIRoute: ForwardObserver {
    /// How a forward to target `tag` (its index in ``balancer``) ended: a target that refused the
    /// connection leaves the rotation for a while; failures are counted by kind, and a response's time to
    /// first byte is recorded.
    func forwardEnded(_ outcome: ProxyOutcome, tag index: Int) {
        switch outcome.failure {
        case .connectFailed?, .connectTimeout?:
            balancer.markDown(index, for: Self.targetRetryAfter)
            engineMetrics?.count("backend_failures", "connect")
        case .responseTimeout?:
            engineMetrics?.count("backend_failures", "timeout")
        case .upstreamClosed?:
            engineMetrics?.count("backend_failures", "closed")
        case .poolExhausted?:
            engineMetrics?.count("backend_failures", "pool_exhausted")
        case .retriedStatus?:
            engineMetrics?.count("backend_failures", "retried_status")
        case .clientClosed?, nil:
            if let ttfb = outcome.timeToFirstByte, let metrics { engineMetrics?.backendResponded(metrics, duration: ttfb) }
        }
    }
}

/// The result of routing one request.
struct RouteMatch: Sendable {
    let route: APIRoute
    /// The listen path that matched (`/` for host-only APIs).
    let matchedPrefix: String
    /// The request path as the backend should see it, before the target's base path: the listen path
    /// removed when the API strips it. Always starts with `/`.
    let forwardedPath: String

    /// The path to send to a target with `basePath` (``BackendURL/basePath``): the two joined.
    func upstreamPath(basePath: String) -> String {
        basePath.isEmpty ? forwardedPath : basePath + forwardedPath
    }
}

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

    init(definition: APIDefinition, balancer: TargetBalancer, jwtVerifier: JWTVerifier?, metrics: EngineMetrics.API? = nil) {
        self.definition = definition
        self.balancer = balancer
        self.jwtVerifier = jwtVerifier
        self.metrics = metrics
    }

    var id: String { definition.id }
}

/// The result of routing one request.
struct RouteMatch: Sendable {
    let route: APIRoute
    /// The listen path that matched (`/` for host-only APIs).
    let matchedPrefix: String
    /// The request path as the backend should see it, before the target's base path: the listen path
    /// removed when the API strips it. Always starts with `/`.
    let forwardedPath: String

    /// The path to send to `target`: its base path joined with ``forwardedPath``.
    func upstreamPath(for target: BackendURL) -> String {
        target.basePath.isEmpty ? forwardedPath : target.basePath + forwardedPath
    }
}

import GatewayCore
import NIOHTTP1

/// An API's `cors`, prepared once per route: what a preflight is answered and which fields a response
/// to an allowed origin carries.
struct CORSRules: Sendable {
    private let origins: Set<String>
    private let anyOrigin: Bool
    private let credentials: Bool
    private let methods: Set<String>
    private let methodsValue: String
    /// Nil: the headers a preflight asks for are allowed.
    private let headers: Set<String>?
    private let headersValue: String?
    private let exposeValue: String?
    private let maxAgeValue: String

    init(_ cors: APIDefinition.CORS) {
        origins = Set(cors.allowOrigins)
        anyOrigin = origins.contains("*")
        credentials = cors.allowCredentials == true
        let methods = cors.allowMethods ?? APIDefinition.CORS.defaultMethods
        self.methods = Set(methods)
        methodsValue = methods.joined(separator: ", ")
        headers = cors.allowHeaders.map(Set.init)
        headersValue = cors.allowHeaders?.joined(separator: ", ")
        exposeValue = cors.exposeHeaders.flatMap { $0.isEmpty ? nil : $0.joined(separator: ", ") }
        maxAgeValue = String(cors.maxAgeSeconds ?? 600)
    }

    /// The fields only the engine's CORS answers: a backend's are left out of an API with `cors`, where
    /// the engine's rules are the ones a browser must see (two `Access-Control-Allow-Origin` fields fail
    /// the check).
    static let fieldNames = [
        "access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers",
        "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age",
    ]

    /// Whether a request is a preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    static func isPreflight(_ head: HTTPRequestHead) -> Bool {
        head.method == .OPTIONS && head.headers.contains(name: "Origin") && head.headers.contains(name: "Access-Control-Request-Method")
    }

    private func allows(origin: String) -> Bool {
        anyOrigin || origins.contains(origin.lowercased())
    }

    /// The `Access-Control-Allow-Origin` value for `origin`: `*` for any origin without credentials,
    /// else the origin itself.
    private func allowOriginValue(_ origin: String) -> String {
        anyOrigin && !credentials ? "*" : origin
    }

    /// The fields a response to a request from `origin` carries; empty for an origin not allowed (the
    /// browser then withholds the response from the page).
    func responseHeaders(origin: String) -> [(String, String)] {
        guard allows(origin: origin) else { return [("Vary", "Origin")] }
        var fields = [("Access-Control-Allow-Origin", allowOriginValue(origin)), ("Vary", "Origin")]
        if credentials { fields.append(("Access-Control-Allow-Credentials", "true")) }
        if let exposeValue { fields.append(("Access-Control-Expose-Headers", exposeValue)) }
        return fields
    }

    /// The answer to a preflight: 204 with what the API allows, or 403 naming what it does not.
    func preflight(_ head: HTTPRequestHead, requestID: String) -> HTTPResponse {
        let origin = head.headers.first(name: "Origin") ?? ""
        let method = head.headers.first(name: "Access-Control-Request-Method") ?? ""
        guard allows(origin: origin) else { return .error(.forbidden, "CORS: origin \(origin) not allowed", requestID: requestID) }
        guard methods.contains(method) || method == "OPTIONS" else {
            return .error(.forbidden, "CORS: method \(method) not allowed", requestID: requestID)
        }
        let requested = head.headers[canonicalForm: "Access-Control-Request-Headers"].map { $0.lowercased() }.filter { !$0.isEmpty }
        if let headers, let refused = requested.first(where: { !headers.contains($0) }) {
            return .error(.forbidden, "CORS: header \(refused) not allowed", requestID: requestID)
        }
        var response = HTTPResponse(status: .noContent)
        response.headers.add(name: "Access-Control-Allow-Origin", value: allowOriginValue(origin))
        response.headers.add(name: "Access-Control-Allow-Methods", value: methodsValue)
        if let allowed = headersValue ?? (requested.isEmpty ? nil : requested.joined(separator: ", ")) {
            response.headers.add(name: "Access-Control-Allow-Headers", value: allowed)
        }
        if credentials { response.headers.add(name: "Access-Control-Allow-Credentials", value: "true") }
        response.headers.add(name: "Access-Control-Max-Age", value: maxAgeValue)
        response.headers.add(name: "Vary", value: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
        return response
    }
}

import NIOHTTP1

/// Routes admin requests by method and path; `:name` segments capture parameters.
public struct AdminRouter: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) async throws -> HTTPResponse

    struct Route: Sendable {
        var method: HTTPMethod
        var segments: [Substring]
        var requiresAuth: Bool
        var handler: Handler
    }

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed([HTTPMethod])
        case notFound
    }

    private(set) var routes: [Route] = []

    public init() {}

    /// Adds a route. `requiresAuth: false` only for probes (`/health`, `/ready`).
    public mutating func add(_ method: HTTPMethod, _ path: String, requiresAuth: Bool = true, _ handler: @escaping Handler) {
        routes.append(Route(method: method, segments: path.split(separator: "/"), requiresAuth: requiresAuth, handler: handler))
    }

    func match(method: HTTPMethod, path: String) -> Match {
        let parts = path.split(separator: "/")
        var allowed: [HTTPMethod] = []
        for route in routes where route.segments.count == parts.count {
            var params: [String: String] = [:]
            var ok = true
            for (pattern, part) in zip(route.segments, parts) {
                if pattern.hasPrefix(":") {
                    params[String(pattern.dropFirst())] = String(part).removingPercentEncoding ?? String(part)
                } else if pattern != part {
                    ok = false
                    break
                }
            }
            guard ok else { continue }
            if route.method == method { return .found(route, params) }
            allowed.append(route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }
}

import Foundation

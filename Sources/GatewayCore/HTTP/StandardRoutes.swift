import NIOCore
import NIOHTTP1

/// The routes every admin listener has: `/health` (liveness, no token), `/ready` (readiness, no token)
/// and `/metrics` (Prometheus text; token required, like every other admin route).
public enum StandardRoutes {
    /// - Parameters:
    ///   - health: extra fields for `/health`'s JSON body.
    ///   - readiness: nil when ready, else the reason it is not (answered with 503).
    public static func add(
        to router: inout AdminRouter,
        service: String,
        health: @escaping @Sendable () async -> [String: String] = { [:] },
        readiness: @escaping @Sendable () async -> String? = { nil }
    ) {
        router.add(.GET, "/health", requiresAuth: false) { _ in
            var fields = await health()
            fields["status"] = fields["status"] ?? "ok"
            fields["service"] = service
            fields["version"] = GatewayVersion.current
            return .json(fields)
        }
        router.add(.GET, "/ready", requiresAuth: false) { request in
            if let reason = await readiness() {
                return .error(.serviceUnavailable, "not ready: \(reason)", requestID: request.requestID)
            }
            return .json(["status": "ready"])
        }
        router.add(.GET, "/metrics") { _ in
            HTTPResponse(
                status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: ByteBuffer(bytes: Telemetry.prometheusText()))
        }
    }
}

import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1

/// Calls the local engine's admin API: readiness and health probes, and cache purges.
///
/// The contract it relies on: `GET /ready` answers 200 when ready and 503 with
/// `{"error": "not ready: <reason>"}` when not; `GET /health` answers 200 with a JSON object (see
/// ``EngineHealthReport``); `POST /cache/purge` with a bearer token and a JSON scope answers 200
/// `{"purged": n}` once applied; any other status means not applied.
struct EngineClient: Sendable {
    var settings: EngineSettings

    init(settings: EngineSettings) {
        self.settings = settings
    }

    /// What `GET /ready` said.
    enum Readiness: Sendable, Equatable {
        case ready
        /// The engine answered but is not ready; the reason it gave.
        case notReady(String)
        /// No usable answer within the probe timeout.
        case unreachable(String)
    }

    /// What `POST /cache/purge` did.
    enum PurgeOutcome: Sendable, Equatable {
        case applied(purged: Int)
        /// The engine refused the request as malformed (400 or 422): retrying it unchanged cannot help.
        case rejected(status: Int, message: String)
        /// Not applied this time (engine down, 5xx, wrong token, timeout): retry.
        case failed(String)
    }

    func ready() async -> Readiness {
        do {
            let response = try await probe(.GET, "/ready", maxResponseBytes: 64 << 10)
            if response.status == .ok { return .ready }
            let message = Self.errorMessage(response.body) ?? "HTTP \(response.status.code)"
            let reason = message.hasPrefix("not ready: ") ? String(message.dropFirst("not ready: ".count)) : message
            return .notReady(reason)
        } catch {
            return .unreachable("\(error)")
        }
    }

    /// The engine's `/health` report, or nil when it does not answer with one.
    func health() async -> EngineHealthReport? {
        guard let response = try? await probe(.GET, "/health", maxResponseBytes: 256 << 10), response.status == .ok else {
            return nil
        }
        return EngineHealthReport(json: Data(response.body.readableBytesView))
    }

    /// One probe request within the probe timeout. A request that fails fast (not by timing out) is tried
    /// once more in the time left, so one broken connection does not mark a healthy engine down for a
    /// whole heartbeat.
    private func probe(_ method: HTTPMethod, _ path: String, maxResponseBytes: Int) async throws -> HTTPResponse {
        let clock = ContinuousClock()
        let deadline = clock.now + settings.probeTimeout
        do {
            return try await AdminHTTPClient(timeout: settings.probeTimeout, maxResponseBytes: maxResponseBytes)
                .request(method, settings.adminURL + path)
        } catch {
            if case .timeout = error as? AdminHTTPClient.ClientError { throw error }
            let left = deadline - clock.now
            guard left > .milliseconds(5), !Task.isCancelled else { throw error }
            return try await AdminHTTPClient(timeout: left, maxResponseBytes: maxResponseBytes).request(method, settings.adminURL + path)
        }
    }

    func purge(_ scope: InvalidationScope) async -> PurgeOutcome {
        let client = AdminHTTPClient(timeout: settings.requestTimeout, maxResponseBytes: 64 << 10)
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer \(settings.token)")
        headers.add(name: "Content-Type", value: "application/json")
        do {
            let response = try await client.request(
                .POST, settings.adminURL + "/cache/purge", headers: headers, body: ByteBuffer(string: scope.purgeRequestJSON))
            switch response.status.code {
            case 200:
                let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]
                return .applied(purged: object.flatMap { EngineHealthReport.number($0["purged"]) }.map { Int($0) } ?? 0)
            case 400, 422:
                return .rejected(status: Int(response.status.code), message: Self.errorMessage(response.body) ?? "")
            default:
                return .failed("HTTP \(response.status.code): \(Self.errorMessage(response.body) ?? "")")
            }
        } catch {
            return .failed("\(error)")
        }
    }

    /// The `error` field of a JSON error body.
    static func errorMessage(_ body: ByteBuffer) -> String? {
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        return object?["error"] as? String
    }
}

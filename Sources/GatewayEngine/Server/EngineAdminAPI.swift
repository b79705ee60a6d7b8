import Foundation
import GatewayCore
import Logging
import NIOCore
import Metrics
import NIOConcurrencyHelpers
import NIOHTTP1

/// The engine's admin routes: API definitions, API keys, cache purges, drain, plus the standard probes
/// and metrics. Every route but `/health` and `/ready` needs the bearer token.
///
/// Every change it makes is logged with its request id, the audit trail of what changed through this
/// engine and when: definitions, keys and drain at `notice`, cache purges (which the node agents relay)
/// at `info`. Key material never is.
struct EngineAdminAPI: Sendable {
    let store: APIDefinitionStore
    let holder: RouteTableHolder
    let keyStore: APIKeyStore
    let cache: ResponseCache
    let metrics: EngineMetrics
    let state: EngineState
    let logger: Logger

    func makeRouter() -> AdminRouter {
        var router = AdminRouter()
        StandardRoutes.add(to: &router, service: "gateway-engine", health: health, readiness: readiness)
        router.add(.GET, "/apis") { _ in try await listAPIs() }
        router.add(.GET, "/apis/:id") { request in try await getAPI(request) }
        router.add(.GET, "/apis/:id/targets") { request in try apiTargets(request) }
        router.add(.PUT, "/apis/:id") { request in try await putAPI(request, id: request.parameters["id"]) }
        router.add(.POST, "/apis") { request in try await putAPI(request, id: nil) }
        router.add(.DELETE, "/apis/:id") { request in try await deleteAPI(request) }
        router.add(.GET, "/keys") { _ in try await listKeys() }
        router.add(.POST, "/keys") { request in try await createKey(request) }
        router.add(.GET, "/keys/:id") { request in try await showKey(request) }
        router.add(.PATCH, "/keys/:id") { request in try await updateKey(request) }
        router.add(.DELETE, "/keys/:id") { request in try await revokeKey(request) }
        router.add(.POST, "/cache/purge") { request in try purge(request) }
        router.add(.POST, "/drain") { request in
            state.setDraining(true)
            metrics.draining.record(1)
            logger.notice("engine draining", metadata: request.audit())
            return .json(["draining": true])
        }
        router.add(.POST, "/undrain") { request in
            state.setDraining(false)
            metrics.draining.record(0)
            logger.notice("engine undrained", metadata: request.audit())
            return .json(["draining": false])
        }
        return router
    }

    // MARK: Probes

    @Sendable func health() async -> [String: String] {
        let summary = metrics.summary()
        return [
            "status": "ok",
            "defs_version": holder.table.version,
            "defs_loaded": String(holder.isLoaded),
            "apis": String(holder.table.definitions.count),
            "in_flight": String(metrics.inFlight),
            "requests_total": String(summary.requests),
            "errors_total": String(summary.errors),
            "p50_ms": String(format: "%.3f", summary.p50),
            "p99_ms": String(format: "%.3f", summary.p99),
            "redis": state.redisReachable ? "up" : "down",
            "draining": String(state.isDraining),
            "cache_entries": String(cache.stats.entries),
        ]
    }

    @Sendable func readiness() async -> String? {
        if state.isDraining { return "draining" }
        if !holder.isLoaded { return "API definitions not loaded" }
        if !state.redisReachable { return "redis unreachable" }
        return nil
    }

    // MARK: APIs

    private func listAPIs() async throws -> HTTPResponse {
        let listing: APIDefinitionStore.Listing
        do { listing = try await store.list() } catch { throw HTTPError(.serviceUnavailable, "redis unavailable: \(error)") }
        let items = listing.definitions.map { String(decoding: $0.redactingSecrets().canonicalJSON(), as: UTF8.self) }
        return .rawJSON("{\"version\":\(listing.version.counter),\"apis\":[" + items.joined(separator: ",") + "]}")
    }

    private func getAPI(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let definition: APIDefinition?
        do { definition = try await store.get(id: id) } catch { throw HTTPError(.serviceUnavailable, "redis unavailable: \(error)") }
        guard let definition else { throw HTTPError(.notFound, "no API \(id)") }
        return .rawJSON(String(decoding: definition.redactingSecrets().canonicalJSON(), as: UTF8.self))
    }

    /// One target of a served API as this engine sees it (`GET /apis/:id/targets`).
    private struct TargetState: Encodable {
        var url: String
        var weight: Int
        /// Whether requests may go to it now: weight above 0, not held out by either kind of health.
        var inRotation: Bool
        /// Its active checks' verdict; nil for an API without `health_check`.
        var healthy: Bool?
        /// How much longer passive health holds it out (it refused a connection), when it does.
        var passiveDownMilliseconds: Int64?

        enum CodingKeys: String, CodingKey {
            case url, weight, healthy
            case inRotation = "in_rotation"
            case passiveDownMilliseconds = "passive_down_ms"
        }
    }

    /// The targets of an API this engine serves, with their health here (each engine checks its own).
    private func apiTargets(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        guard let route = holder.table.routes[id] else { throw HTTPError(.notFound, "no API \(id) served by this engine (absent or inactive)") }
        let checked = route.definition.healthCheck != nil
        let states = route.balancer.states()
        let targets = zip(route.balancer.targets, states).map { url, state in
            TargetState(
                url: url.target.id, weight: state.weight, inRotation: state.weight > 0 && !state.unhealthy && state.passiveDownFor == nil,
                healthy: checked ? !state.unhealthy : nil,
                passiveDownMilliseconds: state.passiveDownFor.map { $0.timeAmount.nanoseconds / 1_000_000 }
            )
        }
        struct Answer: Encodable {
            var api: String
            var targets: [TargetState]
        }
        return .json(Answer(api: id, targets: targets))
    }

    private func putAPI(_ request: HTTPRequest, id: String?) async throws -> HTTPResponse {
        guard request.body.readableBytes > 0 else { throw HTTPError(.badRequest, "request body must be an API definition (JSON)") }
        let definition: APIDefinition
        do {
            definition = try APIDefinition.parse(json: Array(request.body.readableBytesView))
        } catch {
            throw HTTPError(.badRequest, error.description)
        }
        if let id, id != definition.id {
            throw HTTPError(.badRequest, "id: \"\(definition.id)\" does not match the URL's \(id)")
        }
        do {
            let version = try await store.put(definition)
            logger.notice(
                "API definition saved",
                metadata: request.audit(["api": "\(definition.id)", "defs.counter": "\(version)", "api.active": "\(definition.active)"]))
            return .json(["id": definition.id, "version": String(version)])
        } catch .invalid(let error) {
            throw HTTPError(.badRequest, error.description)
        } catch .redis(let error) {
            throw HTTPError(.serviceUnavailable, "redis unavailable: \(error)")
        }
    }

    private func deleteAPI(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let version: Int64?
        do { version = try await store.delete(id: id) } catch { throw HTTPError(.serviceUnavailable, "redis unavailable: \(error)") }
        guard let version else { throw HTTPError(.notFound, "no API \(id)") }
        logger.notice("API definition deleted", metadata: request.audit(["api": "\(id)", "defs.counter": "\(version)"]))
        return .json(["deleted": id, "version": String(version)])
    }

    // MARK: Keys

    private struct KeyBody: Decodable {
        struct Rate: Decodable {
            var rate: Int
            var periodSeconds: Int
            var burst: Int
            enum CodingKeys: String, CodingKey { case rate, periodSeconds = "period_seconds", burst }
        }
        struct Quota: Decodable {
            var limit: Int
            var periodSeconds: Int
            enum CodingKeys: String, CodingKey { case limit, periodSeconds = "period_seconds" }
        }
        /// Required to create a key; a change leaves it out to keep the name.
        var name: String?
        var expiresAt: Date?
        var allowedAPIs: [String]?
        var rateLimit: Rate?
        var quota: Quota?
        /// To create: a key clients already hold, imported instead of a new one.
        var key: String?
        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, expiresAt = "expires_at", allowedAPIs = "allowed_apis", rateLimit = "rate_limit", quota, key
        }
        var ratePolicy: RateLimitPolicy? { rateLimit.map { RateLimitPolicy(rate: $0.rate, periodSeconds: $0.periodSeconds, burst: $0.burst) } }
        var quotaPolicy: QuotaPolicy? { quota.map { QuotaPolicy(limit: $0.limit, periodSeconds: $0.periodSeconds) } }
    }

    private func createKey(_ request: HTTPRequest) async throws -> HTTPResponse {
        let (body, _) = try decodeKeyBody(request.body)
        guard let name = body.name else { throw HTTPError(.badRequest, "name: missing") }
        let keyRequest = APIKeyRequest(
            name: name, expiresAt: body.expiresAt, allowedAPIs: body.allowedAPIs ?? [], rateLimit: body.ratePolicy, quota: body.quotaPolicy,
            importedKey: body.key)
        let created: (key: String, record: APIKeyRecord)
        do {
            created = try await keyStore.create(keyRequest)
        } catch {
            throw Self.httpError(error)
        }
        logger.notice(
            "API key created",
            metadata: request.audit([
                "key.id": "\(created.record.id)", "key.name": "\(created.record.name)",
                "key.apis": "\(created.record.allowedAPIs.joined(separator: ","))", "key.imported": "\(body.key != nil)",
            ]))
        let json = String(decoding: try APIKeyRecord.encoder.encode(created.record), as: UTF8.self)
        // An imported key is not sent back: its holder has it.
        if body.key != nil { return .rawJSON("{\"imported\":true,\"record\":\(json)}", status: .created) }
        // The only time the key itself is shown.
        return .rawJSON("{\"key\":\(StructuredLogHandler.jsonString(created.key)),\"record\":\(json)}", status: .created)
    }

    /// The answer for a key store's refusal.
    private static func httpError(_ error: APIKeyStore.WriteError) -> HTTPError {
        switch error {
        case .invalid(let problems): return HTTPError(.badRequest, problems.map(\.description).joined(separator: "; "))
        case .conflict(let message): return HTTPError(.conflict, message)
        case .redis(let error): return HTTPError(.serviceUnavailable, "redis unavailable: \(error)")
        }
    }

    /// The body's fields, and which of them it names (with `null` or a value). A field the API does not
    /// know is refused (a misspelt one would otherwise be dropped without a word).
    private func decodeKeyBody(_ body: ByteBuffer) throws -> (KeyBody, named: [String: Bool]) {
        guard body.readableBytes > 0, case .object(let fields)? = try? JSONValue.parse(Array(body.readableBytesView)) else {
            throw HTTPError(.badRequest, "request body must be a JSON object")
        }
        let known = Set(KeyBody.CodingKeys.allCases.map(\.rawValue))
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw HTTPError(.badRequest, "\(unknown): unknown field: expected one of \(known.sorted().joined(separator: ", "))")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            let decoded = try decoder.decode(KeyBody.self, from: Data(body.readableBytesView))
            return (decoded, fields.mapValues { $0 == .null })
        } catch let error as DecodingError {
            throw HTTPError(.badRequest, HTTPRequest.describe(error))
        }
    }

    private func showKey(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let record: APIKeyRecord?
        do { record = try await keyStore.record(id: id) } catch { throw HTTPError(.serviceUnavailable, "redis unavailable: \(error)") }
        guard let record else { throw HTTPError(.notFound, "no API key \(id)") }
        return .rawJSON(String(decoding: try APIKeyRecord.encoder.encode(record), as: UTF8.self))
    }

    /// `PATCH /keys/:id`: the fields named change; `null` clears `expires_at`, `rate_limit` or `quota`.
    private func updateKey(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let (body, named) = try decodeKeyBody(request.body)
        guard !named.isEmpty else {
            throw HTTPError(.badRequest, "body: nothing to change: expected some of name, expires_at, allowed_apis, rate_limit, quota")
        }
        if named["key"] != nil {
            throw HTTPError(.badRequest, "key: a key cannot be changed: create (or import) another and revoke this one")
        }
        if named["name"] == true { throw HTTPError(.badRequest, "name: null: expected a name of 1-200 characters") }
        if named["allowed_apis"] == true { throw HTTPError(.badRequest, "allowed_apis: null: expected an array of API ids ([] for all)") }
        var patch = APIKeyPatch()
        patch.name = body.name
        patch.allowedAPIs = body.allowedAPIs
        if named["expires_at"] != nil { patch.expiresAt = .some(body.expiresAt) }
        if named["rate_limit"] != nil { patch.rateLimit = .some(body.ratePolicy) }
        if named["quota"] != nil { patch.quota = .some(body.quotaPolicy) }
        let updated: APIKeyRecord?
        do {
            updated = try await keyStore.update(id: id, patch)
        } catch {
            throw Self.httpError(error)
        }
        guard let updated else { throw HTTPError(.notFound, "no API key \(id) (never created, revoked, or expired)") }
        logger.notice(
            "API key updated",
            metadata: request.audit(["key.id": "\(id)", "key.changed": "\(named.keys.sorted().joined(separator: ","))"]))
        return .rawJSON("{\"record\":\(String(decoding: try APIKeyRecord.encoder.encode(updated), as: UTF8.self))}")
    }

    private func listKeys() async throws -> HTTPResponse {
        let records: [APIKeyRecord]
        do { records = try await keyStore.list() } catch { throw HTTPError(.serviceUnavailable, "redis unavailable: \(error)") }
        let json = String(decoding: try APIKeyRecord.encoder.encode(records), as: UTF8.self)
        return .rawJSON("{\"keys\":\(json)}")
    }

    private func revokeKey(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = request.parameters["id"] ?? ""
        let revoked: Bool
        do { revoked = try await keyStore.revoke(id: id) } catch { throw HTTPError(.serviceUnavailable, "redis unavailable: \(error)") }
        guard revoked else { throw HTTPError(.notFound, "no API key \(id)") }
        logger.notice("API key revoked", metadata: request.audit(["key.id": "\(id)"]))
        return .json(["revoked": id])
    }

    // MARK: Cache

    private struct PurgeBody: Decodable {
        var scope: String
        var api: String?
        var prefix: String?
        var key: String?
        var host: String?
    }

    private func purge(_ request: HTTPRequest) throws -> HTTPResponse {
        let body = try request.decodeJSON(PurgeBody.self)
        let purged: Int
        switch body.scope {
        case "all":
            purged = cache.purgeAll()
        case "api":
            guard let api = body.api, !api.isEmpty else { throw HTTPError(.badRequest, "api: missing: the API id to purge") }
            purged = cache.purge(apiID: api)
        case "prefix":
            guard let prefix = body.prefix, prefix.hasPrefix("/") else {
                throw HTTPError(.badRequest, "prefix: missing or invalid: a path prefix starting with /")
            }
            purged = cache.purge(pathPrefix: prefix, apiID: body.api, host: body.host)
        case "key":
            guard let key = body.key, !key.isEmpty else { throw HTTPError(.badRequest, "key: missing: the resource host/path?query to purge") }
            purged = cache.purge(resource: key)
        default:
            throw HTTPError(.badRequest, "scope: \"\(body.scope)\" is invalid: expected one of all, api, prefix, key")
        }
        metrics.count("cache_purges", body.scope)
        var metadata = request.audit(["purge.scope": "\(body.scope)", "purge.removed": "\(purged)"])
        if let api = body.api { metadata["api"] = "\(api)" }
        if let prefix = body.prefix { metadata["purge.prefix"] = "\(prefix)" }
        if let key = body.key { metadata["purge.key"] = "\(key)" }
        if let host = body.host { metadata["purge.host"] = "\(host)" }
        logger.info("cache purged", metadata: metadata)
        return .json(["purged": purged])
    }
}

/// Engine-wide flags the admin API and readiness share.
final class EngineState: Sendable {
    private let box = NIOLockedValueBox<(draining: Bool, redis: Bool)>((false, true))

    var isDraining: Bool { box.withLockedValue { $0.draining } }
    var redisReachable: Bool { box.withLockedValue { $0.redis } }
    func setDraining(_ value: Bool) { box.withLockedValue { $0.draining = value } }
    func setRedisReachable(_ value: Bool) { box.withLockedValue { $0.redis = value } }
}

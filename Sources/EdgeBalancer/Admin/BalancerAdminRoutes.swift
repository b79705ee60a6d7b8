import GatewayCore
import Logging
import NIOHTTP1

/// The balancer's admin API, on the shared ``AdminHTTPServer`` (loopback, bearer token):
///
/// | route | does |
/// |---|---|
/// | `GET /nodes` | every node: region, zone, state, health sources, weights, EWMA, in-flight, ejections |
/// | `GET /nodes/{id}` | one node |
/// | `PUT /nodes/{id}/weight` `{"weight": n}` | operator weight override (0–10000) |
/// | `DELETE /nodes/{id}/weight` | back to the advertised weight |
/// | `POST /nodes/{id}/drain`, `/undrain` | no new requests to the node / new requests again |
/// | `GET /policy`, `PUT /policy` `{"policy": "…"}` | the balancing policy, switched at runtime |
///
/// Changes are written to Redis (`<prefix>:weights`, `<prefix>:drains`, `<prefix>:policy`) and announced on
/// the events channel before they are applied here, so every balancer applies them within its resync
/// interval and a restarted balancer starts with them. When Redis cannot be written the call fails with
/// 503 and nothing changes. Without Redis (static-only deployments) a change applies to this balancer only
/// and the answer says `"persisted": false`.
enum BalancerAdminRoutes {
    struct WeightBody: Decodable {
        var weight: Int
    }

    struct PolicyBody: Decodable {
        var policy: String
    }

    struct ChangeResult: Encodable {
        var node: String?
        var weight: Int?
        var drained: Bool?
        var policy: String?
        var persisted: Bool
    }

    static let maxWeight = 10_000

    static func add(to router: inout AdminRouter, controller: BalancerController, store: ClusterStore?, logger: Logger) {
        router.add(.GET, "/nodes") { _ in
            .json(await controller.report())
        }

        router.add(.GET, "/nodes/:id") { request in
            let id = request.parameters["id"] ?? ""
            guard let node = await controller.report().nodes.first(where: { $0.id == id }) else {
                throw HTTPError(.notFound, "unknown node \(id)")
            }
            return .json(node)
        }

        router.add(.PUT, "/nodes/:id/weight") { request in
            let id = try await knownNode(request, controller)
            let body = try request.decodeJSON(WeightBody.self)
            guard (0...maxWeight).contains(body.weight) else {
                throw HTTPError(.badRequest, "weight: must be an integer between 0 and \(maxWeight)")
            }
            let persisted = try await persist(store) { try await $0.setWeight(body.weight, node: id) }
            await controller.setWeightOverride(body.weight, node: id)
            logger.notice("node weight set", metadata: request.audit(["node": "\(id)", "weight": "\(body.weight)"]))
            return .json(ChangeResult(node: id, weight: body.weight, persisted: persisted))
        }

        router.add(.DELETE, "/nodes/:id/weight") { request in
            let id = try await knownNode(request, controller)
            let persisted = try await persist(store) { try await $0.clearWeight(node: id) }
            await controller.setWeightOverride(nil, node: id)
            logger.notice("node weight override removed", metadata: request.audit(["node": "\(id)"]))
            return .json(ChangeResult(node: id, persisted: persisted))
        }

        for (path, drained) in [("drain", true), ("undrain", false)] {
            router.add(.POST, "/nodes/:id/\(path)") { request in
                let id = try await knownNode(request, controller)
                let persisted = try await persist(store) { try await $0.setDrained(drained, node: id) }
                await controller.setDrained(drained, node: id)
                logger.notice(drained ? "node drained" : "node undrained", metadata: request.audit(["node": "\(id)"]))
                return .json(ChangeResult(node: id, drained: drained, persisted: persisted))
            }
        }

        router.add(.GET, "/policy") { _ in
            let policy = await controller.policy
            return .json(["policy": policy.kind.rawValue, "source": policy.source])
        }

        router.add(.PUT, "/policy") { request in
            let body = try request.decodeJSON(PolicyBody.self)
            guard let policy = PolicyKind(rawValue: body.policy) else {
                throw HTTPError(
                    .badRequest, "policy: must be one of \(PolicyKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let persisted = try await persist(store) { try await $0.setPolicy(policy) }
            await controller.setPolicy(policy)
            logger.notice("balancing policy switched", metadata: request.audit(["policy": "\(policy.rawValue)"]))
            return .json(ChangeResult(policy: policy.rawValue, persisted: persisted))
        }
    }

    /// The `{id}` of the route, when this balancer knows that node; else 404.
    private static func knownNode(_ request: HTTPRequest, _ controller: BalancerController) async throws(HTTPError) -> String {
        let id = request.parameters["id"] ?? ""
        guard await controller.knows(id) else { throw HTTPError(.notFound, "unknown node \(id)") }
        return id
    }

    /// Runs the write; false without Redis; 503 when Redis refuses.
    private static func persist(_ store: ClusterStore?, _ write: (ClusterStore) async throws -> Void) async throws(HTTPError) -> Bool {
        guard let store else { return false }
        do {
            try await write(store)
            return true
        } catch {
            throw HTTPError(.serviceUnavailable, "cannot persist the change in Redis (\(error)); nothing changed")
        }
    }
}

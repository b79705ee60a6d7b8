import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeBalancer

extension IntegrationTests {
    /// The admin API's contract: token, validation, unknown nodes, and what `GET /nodes` shows.
    @Suite struct AdminAPI {
        /// Every route but the probes needs the bearer token.
        @Test func requiresTheBearerToken() async throws {
            try await withBackends(["a"]) { backends in
                try await withBalancer(["discovery.redis": "false", "nodes.static": backends[0].staticEntry()]) { balancer in
                    #expect(try await balancer.admin(.GET, "/nodes", token: nil).status == .unauthorized)
                    #expect(try await balancer.admin(.GET, "/nodes", token: "wrong-token-wrong-token").status == .unauthorized)
                    #expect(try await balancer.admin(.GET, "/health", token: nil).status == .ok)
                    try await waitUntil("ready") { try await balancer.admin(.GET, "/ready", token: nil).status == .ok }
                }
            }
        }

        /// Bad JSON or fields get 400 naming the field; unknown nodes 404.
        @Test func rejectsBadInputNamingTheField() async throws {
            try await withBackends(["a"]) { backends in
                try await withBalancer(["discovery.redis": "false", "nodes.static": backends[0].staticEntry()]) { balancer in
                    func check(_ method: HTTPMethod, _ path: String, _ json: String?, _ status: HTTPResponseStatus, _ mentions: String) async throws {
                        let response = try await balancer.admin(method, path, json: json)
                        #expect(response.status == status, "\(method) \(path) \(json ?? "")")
                        #expect(String(buffer: response.body).contains(mentions), "\(String(buffer: response.body))")
                    }
                    try await check(.PUT, "/nodes/a/weight", "{", .badRequest, "invalid JSON")
                    try await check(.PUT, "/nodes/a/weight", "{}", .badRequest, "weight: missing")
                    try await check(.PUT, "/nodes/a/weight", #"{"weight": "x"}"#, .badRequest, "weight")
                    try await check(.PUT, "/nodes/a/weight", #"{"weight": -1}"#, .badRequest, "weight: must be an integer between 0 and 10000")
                    try await check(.PUT, "/nodes/nope/weight", #"{"weight": 1}"#, .notFound, "unknown node nope")
                    try await check(.POST, "/nodes/nope/drain", nil, .notFound, "unknown node nope")
                    try await check(.POST, "/nodes/nope/undrain", nil, .notFound, "unknown node nope")
                    try await check(.GET, "/nodes/nope", nil, .notFound, "unknown node nope")
                    try await check(
                        .PUT, "/policy", #"{"policy": "random"}"#, .badRequest,
                        "policy: must be one of round_robin, weighted, least_request, peak_ewma")
                    try await check(.PUT, "/policy", #"{"mode": "weighted"}"#, .badRequest, "policy: missing")
                }
            }
        }

        /// `GET /nodes` shows every field the issue lists, and a weight change applies at once.
        @Test func listsNodesWithWeightsHealthAndLoad() async throws {
            try await withBackends(["a", "b"]) { backends in
                let nodes = "\(backends[0].staticEntry("weight=2,region=eu,zone=eu-1a"));\(backends[1].staticEntry("region=us"))"
                try await withBalancer(["discovery.redis": "false", "nodes.static": nodes, "region": "eu"]) { balancer in
                    _ = await balancer.load(requests: 50)
                    let set = try await balancer.admin(.PUT, "/nodes/b/weight", json: #"{"weight": 7}"#)
                    #expect(set.status == .ok)
                    let report = try await balancer.nodes()
                    #expect(report.region == "eu")
                    #expect(report.policy == "weighted" && report.policySource == "config")
                    let a = try #require(report.nodes.first { $0.id == "a" })
                    #expect(a.region == "eu" && a.zone == "eu-1a" && a.source == "static")
                    #expect(a.weight == .init(configured: 2, advertised: nil, override: nil, effective: 2, current: 2))
                    #expect(a.health.active == "healthy" && a.health.passive == "ok" && a.health.agentState == "up")
                    #expect(a.usable && !a.drained && a.inFlight == 0 && a.ejections == 0)
                    #expect(a.ewmaMilliseconds > 0)
                    let b = try #require(report.nodes.first { $0.id == "b" })
                    #expect(b.weight.override == 7 && b.weight.effective == 7)
                    let json = String(buffer: try await balancer.admin(.GET, "/nodes").body)
                    for field in [
                        "\"ewma_ms\"", "\"in_flight\"", "\"ejections\"", "\"configured\"", "\"advertised\"", "\"effective\"", "\"agent_state\"",
                        "\"active\"", "\"passive\"",
                    ] {
                        #expect(json.contains(field), "missing \(field)")
                    }
                    #expect(try await balancer.admin(.DELETE, "/nodes/b/weight").status == .ok)
                    #expect(try await balancer.nodes().nodes.first { $0.id == "b" }?.weight.effective == 100)
                }
            }
        }

        /// A node whose health check fails leaves rotation; when it passes again it returns.
        @Test func activeHealthChecksTakeAFailingNodeOutAndBackIn() async throws {
            try await withBackends(["a", "b"]) { backends in
                let nodes = backends.map { $0.staticEntry() }.joined(separator: ";")
                try await withBalancer(["discovery.redis": "false", "nodes.static": nodes, "health.fall": "2", "health.rise": "2"]) { balancer in
                    try await balancer.waitForUsable(2)
                    backends[1].healthStatus = .serviceUnavailable
                    try await balancer.waitForUsable(1)
                    let report = try await balancer.nodes()
                    #expect(report.nodes.first { $0.id == "b" }?.health.active == "unhealthy")
                    let result = await balancer.load(requests: 100)
                    #expect(result.byBackend["b"] == nil && result.failures.isEmpty)
                    backends[1].healthStatus = .ok
                    try await balancer.waitForUsable(2)
                }
            }
        }
    }
}

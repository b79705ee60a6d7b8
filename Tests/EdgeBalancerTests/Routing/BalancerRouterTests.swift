import Foundation
import GatewayTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EdgeBalancer
@testable import GatewayCore

@Suite struct BalancerRouterTests {
    let clock = TestClock()

    func router(
        nodes: [String], retries: Bool = true, budget: RetryBudget.Configuration = .init(), logs: InMemoryLogHandler.Store? = nil
    ) -> (BalancerRouter, [String: NodeLoad]) {
        var loads: [String: NodeLoad] = [:]
        for id in nodes { loads[id] = NodeLoad(id: id, ewma: .init(), now: clock.now) }
        let statuses = nodes.map { NodeStatus(node: NodeDescriptor(id: $0, address: "127.0.0.1", port: 1)) }
        let plan = RoutingPlan.make(nodes: statuses, policy: .roundRobin, locality: nil, panicThreshold: 0.5)
        let table = RoutingTable(plan: plan, generation: 1, loads: { loads[$0]! }, seed: 1)
        var configuration = BalancerRouter.Configuration()
        configuration.retries = retries
        configuration.retryBudget = budget
        configuration.accessLogLevel = logs == nil ? nil : .info
        var outlier = OutlierDetector.Configuration()
        outlier.consecutiveFailures = 2
        let passive = PassiveHealth(configuration: outlier)
        passive.setNodes(Set(nodes))
        let router = BalancerRouter(
            configuration: configuration, tables: RoutingTableBox(table), passive: passive, metrics: BalancerMetrics(),
            logger: logs?.logger(label: "balancer") ?? .forTesting(), now: clock.source)
        return (router, loads)
    }

    func request(_ method: HTTPMethod = .GET, id: String = UUID().uuidString, uri: String = "/x") -> ProxyRequest {
        ProxyRequest(
            head: HTTPRequestHead(version: .http1_1, method: method, uri: uri),
            forwarded: ForwardedFields(forwardedFor: "127.0.0.1", proto: "http", host: "example", requestID: id), requestID: id,
            clientIP: "127.0.0.1",
            scheme: "http", host: "example", httpVersion: .http1_1, startedAt: .now())
    }

    func outcome(_ plan: ForwardPlan, status: HTTPResponseStatus? = nil, failure: ProxyOutcome.Failure? = nil) -> ProxyOutcome {
        ProxyOutcome(
            target: plan.target, status: status, failure: failure, timeToFirstByte: status == nil ? nil : .milliseconds(2),
            total: .milliseconds(3), responseStarted: status != nil)
    }

    func decide(_ router: BalancerRouter, _ request: ProxyRequest) throws -> ProxyDecision {
        switch router.decide(request, eventLoop: EmbeddedEventLoop()) {
        case .decided(let decision): return decision
        case .pending(let future): return try future.wait()
        }
    }

    /// No usable node: 503 with a JSON body naming the request id.
    @Test func answers503WithRequestIDWhenNoNodeIsUsable() throws {
        let (router, _) = router(nodes: [])
        guard case .respond(let response) = try decide(router, request(id: "req-1")) else {
            Issue.record("expected a local answer")
            return
        }
        #expect(response.status == .serviceUnavailable)
        #expect(String(buffer: response.body) == #"{"error":"no usable node","request_id":"req-1"}"#)
        #expect(response.headers.first(name: "Content-Type") == "application/json")
    }

    /// A failed idempotent request is retried once, on another node, and the in-flight counts add up.
    @Test func retriesOnceOnAnotherNode() throws {
        let (router, loads) = router(nodes: ["a", "b", "c"])
        let req = request()
        guard case .forward(let first) = try decide(router, req) else { Issue.record("no plan"); return }
        #expect(first.retryable)
        #expect(loads[first.target.id]!.inFlight == 1)
        first.onComplete?(outcome(first, failure: .connectFailed))
        first.onComplete?(outcome(first, failure: .clientClosed))  // a second report must not count twice
        #expect(loads[first.target.id]!.inFlight == 0)
        let second = try #require(router.retry(after: first, failure: .connectFailed, request: req))
        #expect(second.target.id != first.target.id)
        #expect(loads[second.target.id]!.inFlight == 1)
        second.onComplete?(outcome(second, failure: .connectFailed))
        #expect(router.retry(after: second, failure: .connectFailed, request: req) == nil)
        router.completed(req, status: .badGateway, bytesSent: 0, duration: .milliseconds(5))
        #expect(router.requestsInProgress == 0)
        #expect(loads.values.allSatisfy { $0.inFlight == 0 })
    }

    /// A request that ends without its attempt being reported still releases the node.
    @Test func completionReleasesAnUnreportedAttempt() throws {
        let (router, loads) = router(nodes: ["a"])
        let req = request()
        guard case .forward = try decide(router, req) else { Issue.record("no plan"); return }
        #expect(loads["a"]!.inFlight == 1)
        router.completed(req, status: .payloadTooLarge, bytesSent: 0, duration: .milliseconds(1))
        #expect(loads["a"]!.inFlight == 0)
    }

    /// A POST is not marked retryable; with retries off nothing is.
    @Test func onlyIdempotentRequestsAreRetryable() throws {
        let (router, _) = router(nodes: ["a", "b"])
        guard case .forward(let plan) = try decide(router, request(.POST)) else { Issue.record("no plan"); return }
        #expect(!plan.retryable)
        let (noRetries, _) = self.router(nodes: ["a", "b"], retries: false)
        guard case .forward(let other) = try decide(noRetries, request()) else { Issue.record("no plan"); return }
        #expect(!other.retryable)
    }

    /// Once the budget is spent, failures are not retried.
    @Test func respectsTheRetryBudget() throws {
        let (router, _) = router(nodes: ["a", "b"], budget: .init(ratio: 0, minimumPerSecond: 0, windowSeconds: 10))
        let req = request()
        guard case .forward(let plan) = try decide(router, req) else { Issue.record("no plan"); return }
        plan.onComplete?(outcome(plan, failure: .connectFailed))
        #expect(router.retry(after: plan, failure: .connectFailed, request: req) == nil)
    }

    /// One access log line per request, with the node and attempts, and never the query string.
    @Test func logsOneLinePerRequest() throws {
        let logs = InMemoryLogHandler.Store()
        let (router, _) = router(nodes: ["a", "b"], logs: logs)
        let req = request(id: "req-7", uri: "/orders/1?api_key=secret")
        guard case .forward(let first) = try decide(router, req) else { Issue.record("no plan"); return }
        first.onComplete?(outcome(first, failure: .connectFailed))
        let second = try #require(router.retry(after: first, failure: .connectFailed, request: req))
        second.onComplete?(outcome(second, status: .ok))
        router.completed(req, status: .ok, bytesSent: 12, duration: .milliseconds(4))
        let lines = logs.entries.filter { $0.message == "request" }
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.level == .info)
        #expect(line.metadata["request.id"] == "req-7")
        #expect(line.metadata["http.path"] == "/orders/1")
        #expect(line.metadata["http.status"] == "200")
        #expect(line.metadata["node"] == second.target.id)
        #expect(line.metadata["attempts"] == "2")
        #expect(!logs.entries.contains { $0.text.contains("secret") })
    }

    /// Outcomes reach passive health: consecutive 5xx eject the node.
    @Test func feedsOutcomesToOutlierDetection() throws {
        let (router, _) = router(nodes: ["a", "b"])
        var ejected = false
        for _ in 0..<4 {
            let req = request()
            guard case .forward(let plan) = try decide(router, req) else { continue }
            if plan.target.id == "a" { plan.onComplete?(outcome(plan, status: .internalServerError)) }
            router.completed(req, status: .ok, bytesSent: 0, duration: .zero)
        }
        ejected = router.passive.ejectedUntil("a", now: clock.now) != nil
        #expect(ejected)
    }
}

extension ForwardPlan: Equatable {
    public static func == (lhs: ForwardPlan, rhs: ForwardPlan) -> Bool { lhs.target == rhs.target }
}

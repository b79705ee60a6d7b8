import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

extension EngineIntegration {
    /// Backends that refuse, stall or die.
    @Suite struct BackendFailures {
        /// Active health checks (`health_check`): a target answering its check with 503 leaves the rotation
        /// after `unhealthy_threshold` checks and rejoins after `healthy_threshold` passed ones; one too
        /// slow for the check's timeout leaves it too. The checks go to the path on the target's host. A
        /// check removed from the definition takes its verdict with it, and a target slow to answer another
        /// API's checks holds none of this up. Bad check settings are refused by name.
        @Test func unhealthyTargetsLeaveTheRotationAndRejoin() async throws {
            try await withBackends(["good", "flaky", "stalled"]) { backends in
                // Another API's target that takes 20 s to answer its 10 s checks: it holds up no one else's.
                backends[2].setDelay(.seconds(20))
                try await withEngines { cluster in
                    let engine = cluster.first
                    try await cluster.putAPI(
                        apiJSON(
                            "stalled", path: "/stalled", targets: [backends[2].port],
                            extra: #""health_check":{"path":"/healthz","interval_seconds":10,"timeout_ms":10000}"#))
                    let check =
                        #""health_check":{"path":"/healthz","interval_seconds":1,"timeout_ms":300,"healthy_threshold":2,"unhealthy_threshold":1}"#
                    try await cluster.putAPI(apiJSON("hc", path: "/hc", targets: [backends[0].port, backends[1].port], extra: check))
                    func servedBy(_ count: Int) async throws -> Set<String> {
                        var seen = Set<String>()
                        for _ in 0..<count { seen.insert(try await engine.send(.GET, "/hc/x").backend ?? "?") }
                        return seen
                    }
                    try await waitUntil("the first checks", timeout: .seconds(5), interval: .milliseconds(50)) {
                        backends[1].seen.contains { $0.uri == "/healthz" }
                    }
                    #expect(try await servedBy(6) == ["good", "flaky"])

                    backends[1].setStatus(.serviceUnavailable)
                    try await waitUntil("the failing target to leave the rotation", timeout: .seconds(4), interval: .milliseconds(50)) {
                        try await servedBy(4) == ["good"]
                    }
                    #expect(try await servedBy(10) == ["good"], "stays out while its checks fail")
                    let view = try await engine.admin(.GET, "/apis/hc/targets")
                    let targets = try #require(view.json?["targets"] as? [[String: any Sendable]], "\(view)")
                    #expect(targets.map { $0["url"] as? String } == backends.prefix(2).map { "http://127.0.0.1:\($0.port)" })
                    #expect(targets.map { $0["healthy"] as? Bool } == [true, false])
                    #expect(targets.map { $0["in_rotation"] as? Bool } == [true, false])
                    #expect(try await engine.admin(.GET, "/apis/nope/targets").status == 404)
                    // The check removed from the definition: its verdict goes with it.
                    try await cluster.putAPI(apiJSON("hc", path: "/hc", targets: [backends[0].port, backends[1].port]))
                    try await waitUntil("the target back without a check", timeout: .seconds(3), interval: .milliseconds(50)) {
                        try await servedBy(4).contains("flaky")
                    }
                    let unchecked = try await engine.admin(.GET, "/apis/hc/targets")
                    #expect(unchecked.text.contains(#""in_rotation":true"#) && !unchecked.text.contains("healthy"), "\(unchecked)")
                    try await cluster.putAPI(apiJSON("hc", path: "/hc", targets: [backends[0].port, backends[1].port], extra: check))
                    try await waitUntil("the target out again under the check", timeout: .seconds(4), interval: .milliseconds(50)) {
                        try await servedBy(4) == ["good"]
                    }

                    backends[1].setStatus(.ok)
                    try await waitUntil("the target to rejoin after two passed checks", timeout: .seconds(5), interval: .milliseconds(50)) {
                        try await servedBy(4).contains("flaky")
                    }

                    // Slower than the check's timeout counts as failed.
                    backends[1].setDelay(.seconds(1))
                    try await waitUntil("the slow target to leave the rotation", timeout: .seconds(5), interval: .milliseconds(100)) {
                        try await servedBy(2) == ["good"]
                    }
                    backends[1].setDelay(.zero)

                    let bad = try await engine.admin(
                        .PUT, "/apis/bad",
                        json: apiJSON(
                            "bad", path: "/bad", targets: [backends[0].port],
                            extra: #""health_check":{"path":"healthz","interval_seconds":1,"timeout_ms":2000,"expected_status":"abc"}"#))
                    #expect(bad.status == 400)
                    for key in ["health_check.path", "health_check.timeout_ms", "health_check.expected_status"] {
                        #expect(bad.text.contains(key), "\(key): \(bad.text)")
                    }
                }
            }
        }

        /// A target that refuses connections gives a JSON 502 carrying the request id.
        @Test func refusedTargetGives502WithRequestID() async throws {
            let closedPort = try await LoopbackPort.free()
            try await withEngines { cluster in
                try await cluster.putAPI(apiJSON("down", path: "/down", targets: [closedPort]))
                let response = try await cluster.first.send(.GET, "/down/x", headers: [("X-Request-ID", "trace-502")])
                #expect(response.status == 502)
                #expect(response.header("Content-Type") == "application/json")
                #expect(response.string("request_id") == "trace-502")
                #expect(response.header("X-Request-ID") == "trace-502")
            }
        }

        /// A backend slower than the API's response timeout (200 ms) gives 504, soon after the timeout.
        @Test func slowBackendBeyondTheResponseTimeoutGives504() async throws {
            try await withBackends(["sluggish"]) { backends in
                backends[0].setDelay(.seconds(2))
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("slow", path: "/slow", targets: [backends[0].port], extra: #""timeouts":{"response_ms":200}"#))
                    let start = ContinuousClock.now
                    let response = try await cluster.first.send(.GET, "/slow/x")
                    let elapsed = ContinuousClock.now - start
                    #expect(response.status == 504)
                    #expect(response.string("request_id") == response.header("X-Request-ID"))
                    #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(1), "answered after \(elapsed)")
                }
            }
        }

        /// An API with two targets, one refusing connections: every request succeeds (retried on the
        /// live target, and the dead one is then skipped), for plain and cached APIs alike; the admin API's
        /// target view shows it out of rotation for the rest of its 5 s.
        @Test func oneOfTwoTargetsDownAllRequestsSucceed() async throws {
            let closedPort = try await LoopbackPort.free()
            try await withBackends(["alive"]) { backends in
                try await withEngines { cluster in
                    try await cluster.putAPI(apiJSON("pair", path: "/pair", targets: [closedPort, backends[0].port]))
                    try await cluster.putAPI(
                        apiJSON("cachedpair", path: "/cpair", targets: [closedPort, backends[0].port], extra: #""cache":{"enabled":true}"#))
                    var statuses: [Int] = []
                    for i in 0..<20 {
                        let response = try await cluster.first.send(.GET, "/pair/\(i)")
                        statuses.append(response.status)
                        #expect(response.backend == "alive")
                    }
                    for i in 0..<10 {
                        statuses.append(try await cluster.first.send(.GET, "/cpair/\(i)").status)
                    }
                    #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
                    #expect(backends[0].requestCount == 30)
                    // The refusing target is out for a while by passive health; the admin API says so.
                    let view = try await cluster.first.admin(.GET, "/apis/pair/targets")
                    let targets = try #require(view.json?["targets"] as? [[String: any Sendable]], "\(view)")
                    #expect(targets.map { $0["in_rotation"] as? Bool } == [false, true])
                    let out = try #require(targets[0]["passive_down_ms"] as? Int, "\(view)")
                    #expect(out > 0 && out <= 5_000)
                    #expect(targets[1]["passive_down_ms"] == nil && targets[0]["healthy"] == nil)
                }
            }
        }

        /// `retry_on_status`: a target answering 503 sends GETs to the other target (every GET gets 200,
        /// and the failing one was asked), while a POST (not idempotent) gets the 503 as it is; without
        /// the setting the 503s reach the client. A status outside 500–599 is refused by name.
        @Test func retryOnStatusSendsIdempotentRequestsToAnotherTarget() async throws {
            try await withBackends(["busy", "fine"]) { backends in
                backends[0].setStatus(.serviceUnavailable)
                try await withEngines { cluster in
                    let targets = [backends[0].port, backends[1].port]
                    try await cluster.putAPI(apiJSON("retrying", path: "/retrying", targets: targets, extra: #""retry_on_status":[502,503]"#))
                    try await cluster.putAPI(apiJSON("plain", path: "/plain", targets: targets))
                    var retried: [Int] = []
                    for i in 0..<20 { retried.append(try await cluster.first.send(.GET, "/retrying/\(i)").status) }
                    #expect(retried.allSatisfy { $0 == 200 }, "\(retried)")
                    #expect(backends[0].requestCount >= 5, "the 503 target was asked, then passed over: \(backends[0].requestCount)")
                    var posts: [Int] = []
                    for i in 0..<10 { posts.append(try await cluster.first.send(.POST, "/retrying/\(i)", body: "x").status) }
                    #expect(posts.contains(503) && posts.contains(200), "POSTs are not retried: \(posts)")
                    var plain: [Int] = []
                    for i in 0..<10 { plain.append(try await cluster.first.send(.GET, "/plain/\(i)").status) }
                    #expect(plain.contains(503), "\(plain)")

                    let refused = try await cluster.first.admin(
                        .PUT, "/apis/bad", json: apiJSON("bad", path: "/bad", targets: targets, extra: #""retry_on_status":[404]"#))
                    #expect(refused.status == 400 && refused.text.contains("retry_on_status[0]"), "\(refused)")
                }
            }
        }
    }
}

import CoreMetrics
import Foundation
import GatewayCore
import GatewayTesting
import MetricsTestKit
import NIOCore
import Testing

@testable import EdgeBalancer

extension IntegrationTests {
    /// The balancer's upstream side: the per-node connection limit and h2c multiplexing.
    @Suite struct Upstream {
        /// `count` GETs of `url` at once (one client connection each); each body goes to its own file
        /// in `directory`. Returns the status codes.
        func parallelGets(_ url: String, count: Int, maxTime: Int, directory: String? = nil) async throws -> [String] {
            var arguments = ["-Z", "--parallel-max", String(count), "--parallel-immediate", "-w", "%{http_code}\n"]
            for i in 0..<count { arguments += ["-o", directory.map { "\($0)/\(i)" } ?? "/dev/null", url] }
            let (_, output) = try await runCurl(arguments, timeout: .seconds(Int64(maxTime)))
            return output.split(separator: "\n").map(String.init)
        }

        /// A limit of 2 connections per node: 10 concurrent slow requests all succeed, and the node never
        /// has more than 2 connections from the balancer open at once.
        @Test func connectionLimitPerNode() async throws {
            try await withBackends(["a"], delays: ["a": .milliseconds(150)]) { backends in
                try await withBalancer([
                    "discovery.redis": "false", "nodes.static": backends[0].staticEntry(), "health.enabled": "false",
                    "upstream.maxConnectionsPerNode": "2", "upstream.connectTimeout": "5s",
                ]) { balancer in
                    let codes = try await parallelGets("http://127.0.0.1:\(balancer.port)/x", count: 10, maxTime: 15)
                    #expect(codes == Array(repeating: "200", count: 10), "\(codes)")
                    #expect(backends[0].served == 10)
                    #expect(backends[0].peakConnections <= 2)
                    #expect(backends[0].peakInFlight <= 2)
                    let statistics = await balancer.app.pools.statistics()["a"]
                    #expect((statistics?.connections ?? 0) <= 2)
                }
            }
        }

        /// A node that never answers holds its 2 connections; other requests wait the connect timeout and
        /// get 503 JSON with their request id. Being at the limit is not the node failing: it is not
        /// ejected, even with an outlier threshold those 503s would pass.
        @Test func nodeAtItsLimitIsNotEjected() async throws {
            let metrics = TestMetrics()
            try await withMetricsFactory(metrics) {
                try await mutedNodeAtItsLimit()
            }
            let timeouts = try metrics.expectCounter("balancer_upstream_pool_timeouts_total", [("node", "mute")])
            #expect(timeouts.totalValue >= 6)
            #expect(try metrics.expectCounter("balancer_ejections_total", [("node", "mute")]).totalValue == 0)
        }

        private func mutedNodeAtItsLimit() async throws {
            try await withFakeTCPServer(.silent) { fake in
                try await withBalancer([
                    "discovery.redis": "false", "nodes.static": "id=mute,host=127.0.0.1,port=\(fake.port)", "health.enabled": "false",
                    "upstream.maxConnectionsPerNode": "2", "upstream.connectTimeout": "300ms", "upstream.responseTimeout": "20s",
                    "outlier.consecutiveFailures": "2", "outlier.maxEjectedPercent": "100",
                ]) { balancer in
                    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gc-limit-\(UUID().uuidString)").path
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    defer { try? FileManager.default.removeItem(atPath: directory) }
                    let codes = try await parallelGets("http://127.0.0.1:\(balancer.port)/x", count: 8, maxTime: 3, directory: directory)
                    let limited = codes.filter { $0 == "503" }.count
                    #expect(limited >= 6, "\(codes)")
                    #expect(fake.acceptedConnections <= 2)
                    // The held requests got nothing before curl gave up: no file for them.
                    let bodies = (0..<8).map { (try? String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8)) ?? "" }
                    let limitBodies = bodies.filter { $0.contains("is at its connection limit") }
                    #expect(limitBodies.count == limited)
                    #expect(limitBodies.allSatisfy { $0.contains("\"request_id\":\"") })
                    #expect(balancer.app.passive.totalEjections("mute") == 0)
                    #expect(balancer.app.passive.ejectedUntil("mute", now: .now) == nil)
                    #expect(await balancer.app.controller.currentPlan.usableCount == 1)
                }
            }
        }

        /// `upstream.protocol: h2c`: requests to each node share one HTTP/2 connection per event loop, and
        /// when a node dies the next requests fail over to the other node.
        @Test func h2cMultiplexingAndFailover() async throws {
            let a = try await TestH2Backend.start(name: "a")
            let b = try await TestH2Backend.start(name: "b")
            a.setDelay(.milliseconds(50))
            b.setDelay(.milliseconds(50))
            let nodes = "id=a,host=127.0.0.1,port=\(a.port);id=b,host=127.0.0.1,port=\(b.port)"
            do {
                try await run(a, b, nodes)
            } catch {
                await a.kill()
                await b.kill()
                throw error
            }
            await a.kill()
            await b.kill()
        }

        /// The per-node gauges follow the pools: with h2c and a limit of 2, six slow requests at once show
        /// 2 streams, at least one waiting request and an HTTP/2 connection; all drop to 0 after.
        @Test func upstreamGaugesFollowThePools() async throws {
            let backend = try await TestH2Backend.start(name: "slow")
            backend.setDelay(.milliseconds(1500))
            let metrics = TestMetrics()
            do {
                try await withMetricsFactory(metrics) {
                    try await withBalancer([
                        "discovery.redis": "false", "nodes.static": "id=slow,host=127.0.0.1,port=\(backend.port)",
                        "health.enabled": "false", "upstream.protocol": "h2c", "upstream.maxConnectionsPerNode": "2",
                        "upstream.connectTimeout": "10s",
                    ]) { balancer in
                        let load = Task { try await parallelGets("http://127.0.0.1:\(balancer.port)/x", count: 6, maxTime: 15) }
                        func gauge(_ label: String) -> Int64? {
                            (try? metrics.expectGauge(label, [("node", "slow")]))?.lastValue.map { Int64($0) }
                        }
                        try await waitUntil("2 streams and waiting requests reported", timeout: .seconds(8)) {
                            gauge("balancer_upstream_streams") == 2 && (gauge("balancer_upstream_pool_waiting") ?? 0) >= 1
                                && (gauge("balancer_upstream_connections") ?? 0) >= 1
                        }
                        let codes = try await load.value
                        #expect(codes == Array(repeating: "200", count: 6), "\(codes)")
                        #expect(backend.peakActiveStreams <= 2)
                        try await waitUntil("gauges back to 0", timeout: .seconds(5)) {
                            gauge("balancer_upstream_streams") == 0 && gauge("balancer_upstream_pool_waiting") == 0
                        }
                    }
                }
            } catch {
                await backend.kill()
                throw error
            }
            await backend.kill()
        }

        private func run(_ a: TestH2Backend, _ b: TestH2Backend, _ nodes: String) async throws {
            try await withBalancer([
                "discovery.redis": "false", "nodes.static": nodes, "health.enabled": "false", "policy": "round_robin",
                "upstream.protocol": "h2c",
            ]) { balancer in
                let codes = try await parallelGets("http://127.0.0.1:\(balancer.port)/x", count: 20, maxTime: 10)
                #expect(codes == Array(repeating: "200", count: 20), "\(codes)")
                #expect(a.streams + b.streams == 20)
                let loops = System.coreCount  // the balancer runs on the singleton group
                #expect(a.acceptedConnections <= loops && b.acceptedConnections <= loops)
                #expect(a.acceptedConnections + b.acceptedConnections < 20)

                await a.kill()
                try await waitUntil("a's connections left the pool") {
                    await balancer.app.pools.statistics()["a"]?.connections ?? 0 == 0
                }
                let after = try await parallelGets("http://127.0.0.1:\(balancer.port)/y", count: 6, maxTime: 10)
                #expect(after == Array(repeating: "200", count: 6), "\(after)")
                #expect(b.streams >= 6)
            }
        }
    }
}

import Configuration
import Foundation
import GatewayCore
import GatewayTesting
import Testing

@testable import EdgeBalancer

/// Reads balancer settings from `--set`-style overrides only.
func balancerSettings(_ overrides: [String: String]) async throws -> BalancerSettings {
    let sources = ConfigSources(overrides: overrides, environmentPrefix: ["gc", "balancer", "test"], environment: [:])
    var validator = ConfigValidator(try await sources.makeReader())
    let settings = BalancerSettings.read(&validator)
    try validator.finish()
    return settings
}

@Suite struct BalancerSettingsTests {
    /// Defaults: listener on 127.0.0.1:8080, admin on 9103, weighted policy, health checks and retries on.
    @Test func defaults() async throws {
        let settings = try await balancerSettings(["admin.token": "0123456789abcdef"])
        #expect(settings.listenHost == "127.0.0.1")
        #expect(settings.listenPort == 8080)
        #expect(settings.common.admin.port == 9103)
        #expect(settings.controller.policy == .weighted)
        #expect(settings.health.enabled && settings.router.retries)
        #expect(settings.router.retryBudget.ratio == 0.2)
        #expect(settings.tls == nil)
        #expect(settings.useRedis)
        #expect(settings.maxConnectionsPerNode == 1024)
        #expect(settings.upstreamProtocol == .http1)
    }

    /// `upstream.maxConnectionsPerNode` and `upstream.protocol` are read; a limit of 0 (unlimited) or an
    /// unknown protocol is refused.
    @Test func readsUpstreamLimitAndProtocol() async throws {
        let settings = try await balancerSettings([
            "admin.token": "0123456789abcdef", "upstream.maxConnectionsPerNode": "16", "upstream.protocol": "h2c",
        ])
        #expect(settings.maxConnectionsPerNode == 16)
        #expect(settings.upstreamProtocol == .h2c)
        do {
            _ = try await balancerSettings([
                "admin.token": "0123456789abcdef", "upstream.maxConnectionsPerNode": "0", "upstream.protocol": "h3",
            ])
            Issue.record("accepted an invalid configuration")
        } catch let error as ConfigValidationError {
            #expect(Set(error.problems.map(\.key)) == ["upstream.maxConnectionsPerNode", "upstream.protocol"])
        }
    }

    /// Every own key is read.
    @Test func readsOwnKeys() async throws {
        let settings = try await balancerSettings([
            "admin.token": "0123456789abcdef", "listen.port": "0", "region": "eu", "policy": "peak_ewma",
            "nodes.static": "id=a,host=127.0.0.1,port=8081,region=eu;id=b,host=127.0.0.1,port=8082,weight=3",
            "health.path": "/ping", "health.interval": "250ms", "health.rise": "3", "health.expectedStatus": "200,204",
            "retry.budgetPercent": "10", "outlier.consecutiveFailures": "7", "slowStart.window": "0",
            "accessLog.level": "off", "discovery.redis": "false",
        ])
        #expect(settings.listenPort == 0)
        #expect(settings.controller.region == "eu")
        #expect(settings.controller.policy == .peakEWMA)
        #expect(settings.staticNodes.map(\.id) == ["a", "b"])
        #expect(settings.health.path == "/ping")
        #expect(settings.health.interval == .milliseconds(250))
        #expect(settings.controller.rise == 3)
        #expect(settings.health.expectedStatus.matches(204))
        #expect(settings.router.retryBudget.ratio == 0.1)
        #expect(settings.outlier.consecutiveFailures == 7)
        #expect(settings.controller.slowStartWindow == .zero)
        #expect(settings.router.accessLogLevel == nil)
        #expect(!settings.useRedis)
    }

    /// Every problem is reported at once, each naming its key.
    @Test func reportsEveryProblem() async throws {
        do {
            _ = try await balancerSettings([
                "admin.token": "0123456789abcdef", "policy": "random", "listen.port": "70000",
                "nodes.static": "id=a,host=h", "tls.certFile": "/nonexistent.pem", "discovery.redis": "false",
                "hash.key": "query:user", "hash.balanceFactor": "0.5", "retry.onStatus": "503,404",
            ])
            Issue.record("accepted an invalid configuration")
        } catch let error as ConfigValidationError {
            let keys = Set(error.problems.map(\.key))
            #expect(
                keys.isSuperset(of: ["policy", "listen.port", "nodes.static", "tls.keyFile", "hash.key", "hash.balanceFactor", "retry.onStatus"]))
        }
    }

    /// The client TLS files toward the nodes: only with `upstream.tls`, a certificate needs its key, and
    /// a file that cannot be read is named by its key; `tls.clientCaFile` and `tls.host` need the listener's
    /// own files.
    @Test func reportsClientTLSProblems() async throws {
        let base = ["admin.token": "0123456789abcdef", "nodes.static": "id=a,host=h,port=1", "discovery.redis": "false"]
        func problems(_ extra: [String: String]) async throws -> Set<String> {
            do {
                _ = try await balancerSettings(base.merging(extra) { _, new in new })
                return []
            } catch let error as ConfigValidationError {
                return Set(error.problems.map(\.key))
            }
        }
        let cases: [([String: String], Set<String>)] = [
            (["upstream.certFile": "/a.pem", "upstream.keyFile": "/b.pem"], ["upstream.certFile", "upstream.keyFile"]),
            (["upstream.tls": "true", "upstream.certFile": "/nonexistent.pem"], ["upstream.keyFile"]),
            (["upstream.tls": "true", "upstream.certFile": "/nonexistent.pem", "upstream.keyFile": "/nonexistent.key"], ["upstream.certFile"]),
            (["upstream.tls": "true", "upstream.caFile": "/nonexistent.pem"], ["upstream.caFile"]),
            (["tls.clientCaFile": "/nonexistent.pem"], ["tls.clientCaFile"]),
            (["tls.host": "0.0.0.0"], ["tls.host"]),
            (["upstream.tls": "true"], []),
        ]
        for (settings, expected) in cases {
            let found = try await problems(settings)
            #expect(found == expected, "\(settings): \(found)")
        }
    }

    /// The TLS listener takes `listen.host` unless `tls.host` names its own address.
    @Test func tlsHostDefaultsToTheListenHost() async throws {
        let certificates = try await TestCertificates.make()
        let base = [
            "admin.token": "0123456789abcdef", "nodes.static": "id=a,host=h,port=1", "discovery.redis": "false",
            "listen.host": "127.0.0.3", "tls.certFile": certificates.serverCertFile, "tls.keyFile": certificates.serverKeyFile,
        ]
        let shared = try await balancerSettings(base)
        #expect(shared.tls?.host == "127.0.0.3")
        let own = try await balancerSettings(base.merging(["tls.host": "0.0.0.0"]) { _, new in new })
        #expect(own.tls?.host == "0.0.0.0")
        #expect(own.listenHost == "127.0.0.3")
    }

    /// `nodes.static` may be a YAML list of entries as well as one `;`-separated string.
    @Test func readsStaticNodesFromAYAMLList() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("balancer-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let yaml = """
            admin:
              token: "0123456789abcdef"
            region: eu
            nodes:
              static:
                - id=a,host=10.0.0.1,port=8081,weight=2,region=eu
                - id=b,host=10.0.0.2,port=8081,region=us,zone=us-1a
            """
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        let sources = ConfigSources(filePath: path, environmentPrefix: ["gc", "balancer", "test"], environment: [:])
        var validator = ConfigValidator(try await sources.makeReader())
        let settings = BalancerSettings.read(&validator)
        try validator.finish()
        #expect(settings.staticNodes.map(\.id) == ["a", "b"])
        #expect(settings.staticNodes[0].configuredWeight == 2)
        #expect(settings.staticNodes[1].zone == "us-1a")
        #expect(settings.controller.region == "eu")
    }
}

import Foundation
import GatewayCore
import GatewayTesting
import Testing

@testable import NodeAgent

/// Reading and checking the agent's configuration.
@Suite struct NodeAgentConfigurationTests {
    /// With only a token, the defaults are the issue's: hostname as node id, 1 s heartbeat, a lease of
    /// three heartbeats, the engine on 127.0.0.1:9101, admin on 9102.
    @Test func defaultsFollowTheDesign() async throws {
        let settings = try await readSettings(["admin.token": agentToken])
        #expect(settings.node.id == "test-host")
        #expect(settings.heartbeatInterval == .seconds(1))
        #expect(settings.lease == .seconds(3))
        #expect(settings.engine.adminURL == "http://127.0.0.1:9101")
        #expect(settings.engine.token == agentToken)
        #expect(settings.common.admin.port == 9102)
        #expect(settings.engine.probeTimeout < settings.heartbeatInterval)
        #expect(settings.drainDeadline < settings.common.shutdownDeadline)
        #expect(settings.stateFile == "./node-agent-test-host.state")
        #expect(settings.common.redis.maxBackoff <= settings.heartbeatInterval)
    }

    /// Every bad key is reported at once, each by name.
    @Test func badConfigurationIsRejectedNamingEveryKey() async throws {
        let overrides = [
            "admin.token": agentToken,
            "node.id": "bad id",
            "node.weight": "-5",
            "node.labels": "tier=gold,broken",
            "heartbeat.interval": "soon",
            "engine.adminURL": "ftp://engine",
            "engine.probeTimeout": "3s",
            "drain.deadline": "45s",
        ]
        let error = await #expect(throws: ConfigValidationError.self) { try await readSettings(overrides) }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(
            keys == [
                "node.id", "node.weight", "node.labels", "heartbeat.interval", "engine.adminURL", "engine.probeTimeout", "drain.deadline",
            ])
    }

    /// The token may come from a file; the engine token from its own file; labels are normalised.
    @Test func tokensComeFromFilesAndLabelsAreSorted() async throws {
        try await withTemporaryDirectory { directory in
            let engineTokenFile = directory + "/engine-token"
            try "engine-token-from-file-0001\n".write(toFile: engineTokenFile, atomically: true, encoding: .utf8)
            let settings = try await readSettings([
                "admin.token": agentToken, "engine.tokenFile": engineTokenFile, "node.labels": "zeta=1, alpha=2",
                "heartbeat.interval": "250ms",
            ])
            #expect(settings.engine.token == "engine-token-from-file-0001")
            #expect(settings.node.labelsText == "alpha=2,zeta=1")
            #expect(settings.lease == .milliseconds(750))
        }
    }

    /// The environment names keys with the GC_AGENT_ prefix, and systemd's STATE_DIRECTORY places the
    /// state file.
    @Test func environmentUsesTheAgentPrefix() async throws {
        let environment = [
            "GC_AGENT_ADMIN_TOKEN": agentToken, "GC_AGENT_NODE_REGION": "us-east", "GC_AGENT_NODE_ZONE": "us-east-1b",
            "STATE_DIRECTORY": "/var/lib/node-agent",
        ]
        let settings = try await readSettings([:], environment: environment)
        #expect(settings.node.region == "us-east" && settings.node.zone == "us-east-1b")
        #expect(settings.stateFile == "/var/lib/node-agent/node-agent-test-host.state")
    }

    /// The binary's `--check-config` exits 1 and names the bad key; a good configuration exits 0.
    @Test func checkConfigNamesTheBadKey() async throws {
        let bad = try await AgentProcess.run(["--check-config", "--set", "admin.token=\(agentToken)", "--set", "node.weight=heavy"])
        #expect(bad.status == 1)
        #expect(bad.output.contains("node.weight"))
        let good = try await AgentProcess.run(["--check-config", "--set", "admin.token=\(agentToken)"])
        #expect(good.status == 0, "\(good.output)")
    }
}

import Foundation
import GatewayCore
import GatewayTesting
import Logging
import Testing

/// The three services on Redis over TLS (their built binaries against a redis-server's TLS port): each
/// becomes ready and writes its keys there; and a CA file that cannot be read stops `--check-config`
/// with the key named.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct RedisTLSServiceTests {
    static let token = "redis-tls-test-token-0123456789abcdef"

    @Test func servicesRunOnRedisOverTLS() async throws {
        let directory = try makeTemporaryDirectory("redis-tls")
        defer { removeDirectory(directory) }
        try await withTLSRedisServer(clientCertificates: true) { redis, tlsPort, certificates in
            let tls = [
                "--set", "redis.url=rediss://127.0.0.1:\(tlsPort)", "--set", "redis.tls.caFile=\(certificates.caFile)",
                "--set", "redis.tls.certFile=\(certificates.clientCertFile)", "--set", "redis.tls.keyFile=\(certificates.clientKeyFile)",
                "--set", "admin.token=\(Self.token)",
            ]
            let ports = try await [LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free(), LoopbackPort.free()]
            let engine = try ServiceProcess.launch(
                try ServiceBinary.engine.path(), tls + ["--set", "admin.port=\(ports[0])", "--set", "listen.port=\(ports[1])"],
                logPath: directory + "/engine.log")
            let agent = try ServiceProcess.launch(
                try ServiceBinary.agent.path(),
                tls + [
                    "--set", "admin.port=\(ports[2])", "--set", "node.id=tls-node", "--set", "node.region=r1", "--set", "node.zone=r1a",
                    "--set", "node.address=127.0.0.1", "--set", "node.port=\(ports[1])", "--set", "engine.adminURL=http://127.0.0.1:\(ports[0])",
                    "--set", "engine.token=\(Self.token)", "--set", "state.file=\(directory)/agent.state",
                ],
                logPath: directory + "/agent.log")
            let balancer = try ServiceProcess.launch(
                try ServiceBinary.balancer.path(), tls + ["--set", "admin.port=\(ports[3])", "--set", "listen.port=\(ports[4])"],
                logPath: directory + "/balancer.log")
            defer {
                for service in [engine, agent, balancer] { service.signal(SIGKILL) }
            }
            do {
                for (name, port) in [("engine", ports[0]), ("agent", ports[2]), ("balancer", ports[3])] {
                    try await waitUntil("the \(name) to be ready on Redis over TLS", timeout: .seconds(30), interval: .milliseconds(100)) {
                        try await runCurl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/ready"]).output == "200"
                    }
                }
                // The balancer discovered the node the agent registered over TLS.
                try await waitUntil("the balancer to list the agent's node", timeout: .seconds(20), interval: .milliseconds(100)) {
                    let nodes = try await runCurl(["-H", "Authorization: Bearer \(Self.token)", "http://127.0.0.1:\(ports[3])/nodes"])
                    return nodes.output.contains("tls-node")
                }
                let plain = RedisClient(configuration: redis.configuration(), logger: Logger(label: "test"))
                defer { Task { await plain.shutdown() } }
                #expect(try await plain.send("EXISTS", .string(ClusterKeys().node("tls-node"))) == .integer(1))
                let clients = try await plain.send("CLIENT", "LIST").string ?? ""
                for name in ["gateway-engine", "node-agent", "edge-balancer"] {
                    #expect(clients.contains("name=\(name)"), "\(name) connected: \(clients)")
                }
            } catch {
                Issue.record("engine: \(engine.logTail())\nagent: \(agent.logTail())\nbalancer: \(balancer.logTail())")
                throw error
            }
        }
    }

    @Test func unreadableCAFileStopsCheckConfig() async throws {
        let result = try await ServiceProcess.run(
            try ServiceBinary.engine.path(),
            [
                "--check-config", "--set", "admin.token=\(Self.token)", "--set", "redis.url=rediss://127.0.0.1:6380",
                "--set", "redis.tls.caFile=/nonexistent/redis-ca.crt",
            ])
        #expect(result.status != 0)
        #expect(result.output.contains("redis.tls.caFile") && result.output.contains("/nonexistent/redis-ca.crt"), "\(result.output)")
    }
}

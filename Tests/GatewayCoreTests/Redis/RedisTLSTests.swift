import Foundation
import GatewayCore
import GatewayTesting
import Logging
import Testing

/// `rediss://` against a real redis-server with a TLS port (certificates made by openssl for each run):
/// the server is verified (by CA and by name), a client certificate is shown when Redis asks for one, and
/// every failure is a clear `RedisError.tls` or connectivity error, at once.
@Suite("Redis over TLS", .timeLimit(.minutes(2)))
struct RedisTLSTests {
    static func configuration(port: Int, host: String = "127.0.0.1", _ tls: RedisTLSSettings) -> RedisConfiguration {
        var configuration = RedisConfiguration.forTesting(url: RedisURL(host: host, port: port, tls: true))
        configuration.connectTimeout = .seconds(3)
        configuration.commandTimeout = .seconds(3)
        configuration.tls = tls
        return configuration
    }

    /// Trusting the test CA, the client works through its pool, its shared connections and a pub/sub
    /// subscription; the certificate matches the IP address, or the name given as `serverName`.
    @Test func trustedServerWorks() async throws {
        try await withTLSRedisServer { server, port, certificates async throws in
            let client = RedisClient(configuration: Self.configuration(port: port, .init(caFile: certificates.caFile)), logger: .forTesting())
            try await client.set("over-tls", to: "yes")
            #expect(try await client.get("over-tls") == "yes")
            let replies = try await client.pipeline([RedisCommand("INCR", "n"), RedisCommand("INCR", "n")])
            #expect(replies == [.integer(1), .integer(2)])
            let plain = RedisClient(configuration: server.configuration(), logger: .forTesting())
            #expect(try await plain.get("over-tls") == "yes", "the same server, on its plain port")
            await plain.shutdown()

            let subscriber = RedisSubscriber(
                configuration: Self.configuration(port: port, .init(caFile: certificates.caFile)), channels: ["tls-events"], logger: .forTesting())
            try await withRecordedSubscription(subscriber) { recorder in
                _ = try await client.send("PUBLISH", "tls-events", "hello")
                try await waitUntil("the message", timeout: .seconds(10)) {
                    await recorder.contains(.message(channel: "tls-events", payload: "hello"))
                }
            }
            await client.shutdown()

            let byName = try await RedisConnection.connect(
                configuration: Self.configuration(port: port, .init(caFile: certificates.caFile, serverName: "localhost")))
            #expect(try await byName.send(RedisCommand("GET", "over-tls")).string == "yes")
            await byName.close()
        }
    }

    /// Against a certificate that names `localhost` only: an untrusted certificate (another CA, or the
    /// system's trust store), a name it does not carry, an IP address it does not carry, TLS to a plain
    /// port and plain text to the TLS port all fail with a connectivity error, not a hang; the TLS ones
    /// say it was the TLS handshake. The right name works.
    @Test func untrustedOrMismatchedServersFailClearly() async throws {
        try await withTLSRedisServer(named: true) { server, port, certificates async throws in
            let right = try await RedisConnection.connect(
                configuration: Self.configuration(port: port, .init(caFile: certificates.caFile, serverName: "localhost")))
            #expect(try await right.send(RedisCommand("PING")) == .status("PONG"))
            await right.close()
            for (settings, why) in [
                (RedisTLSSettings(caFile: certificates.otherCAFile, serverName: "localhost"), "a CA that did not sign it"),
                (RedisTLSSettings(serverName: "localhost"), "the system's trust store"),
                (RedisTLSSettings(caFile: certificates.caFile, serverName: "redis.example.org"), "a name it does not carry"),
                (RedisTLSSettings(caFile: certificates.caFile), "an IP address it does not carry"),
            ] {
                let started = ContinuousClock.now
                let error = try await redisError { try await RedisConnection.connect(configuration: Self.configuration(port: port, settings)) }
                guard case .tls(let message) = error else {
                    Issue.record("\(why): expected a TLS error, got \(String(describing: error))")
                    continue
                }
                #expect(message.contains("handshake"), "\(why): \(message)")
                #expect(error?.isConnectivity == true)
                #expect(ContinuousClock.now - started < .seconds(2), "\(why): failed at once")
            }
            // TLS to the plain port: the server never answers the handshake.
            let toPlain = try await redisError {
                try await RedisConnection.connect(configuration: Self.configuration(port: server.port, .init(caFile: certificates.caFile)))
            }
            guard case .tls = toPlain else {
                Issue.record("TLS to a plain port: expected a TLS error, got \(String(describing: toPlain))")
                return
            }
            // Plain text to the TLS port: the command fails as a connectivity error, not a hang.
            var plain = RedisConfiguration.forTesting(url: RedisURL(host: "127.0.0.1", port: port))
            plain.connectTimeout = .seconds(2)
            plain.commandTimeout = .seconds(2)
            let client = RedisClient(configuration: plain, logger: .forTesting())
            let plainError = try await redisError(within: .seconds(8)) { try await client.ping() }
            #expect(plainError?.isConnectivity == true, "\(String(describing: plainError))")
            await client.shutdown()
        }
    }

    /// Redis that requires client certificates (`tls-auth-clients yes`) takes the client with one signed
    /// by its CA, and refuses the client without.
    @Test func clientCertificateWhenRedisAsksForOne() async throws {
        try await withTLSRedisServer(clientCertificates: true) { _, port, certificates async throws in
            let withCertificate = RedisClient(
                configuration: Self.configuration(
                    port: port, .init(caFile: certificates.caFile, certFile: certificates.clientCertFile, keyFile: certificates.clientKeyFile)),
                logger: .forTesting())
            try await withCertificate.ping()
            #expect(try await withCertificate.send("SET", "mtls", "ok") == .status("OK"))
            await withCertificate.shutdown()

            let without = RedisClient(configuration: Self.configuration(port: port, .init(caFile: certificates.caFile)), logger: .forTesting())
            let error = try await redisError(within: .seconds(8)) { try await without.ping() }
            #expect(error?.isConnectivity == true, "\(String(describing: error))")
            await without.shutdown()
        }
    }

    /// A Redis Cluster over TLS (`tls-cluster yes`): the layout read over TLS names the nodes' TLS
    /// ports, every master serves its keys over TLS, a cross-node pipeline and `MOVED` work, and the
    /// client never connects to a plain port.
    @Test func redisClusterOverTLS() async throws {
        let certificates = try await TestCertificates.make()
        try await withRedisCluster(tls: certificates) { cluster async throws in
            var configuration = cluster.tlsConfiguration()
            configuration.clientName = "tls-cluster-test"
            let client = RedisClient(configuration: configuration, logger: .forTesting())
            defer { Task { await client.shutdown() } }
            let keyOn = try await cluster.keyPerMaster(prefix: "t:")
            for (node, key) in keyOn {
                try await client.set(key, to: "node \(node)")
                #expect(try await cluster.admins[node].get(key) == "node \(node)", "\(key) on its master")
            }
            let keys = keyOn.keys.sorted().map { keyOn[$0]! }
            let replies = try await client.pipeline(keys.map { RedisCommand("GET", .string($0)) })
            #expect(replies.map(\.string) == keyOn.keys.sorted().map { "node \($0)" })
            #expect(client.clusterStatistics?.masters == 3)
            // Every connection the client has is on a node's TLS port (`laddr`), none on a plain port.
            var connections = 0
            for (node, admin) in cluster.admins.enumerated() {
                let clients = try await admin.send("CLIENT", "LIST").string ?? ""
                for line in clients.split(whereSeparator: \.isNewline) where line.contains("name=tls-cluster-test") {
                    connections += 1
                    #expect(line.contains("laddr=127.0.0.1:\(cluster.tlsPorts[node]) "), "node \(node): \(line)")
                }
            }
            #expect(connections >= 3, "the client's connections, one or more per master")
        }
    }

    /// The files are read once and shared by later connections; after ``RedisTLS/forgetContexts()``
    /// (what SIGHUP calls) the next connection reads them again: here a CA file replaced by another CA's
    /// certificate stops new connections, while the open one keeps working.
    @Test func filesAreRereadAfterForgetContexts() async throws {
        try await withTLSRedisServer { _, port, certificates async throws in
            let caFile = certificates.directory + "/rotating-ca.crt"
            try FileManager.default.copyItem(atPath: certificates.caFile, toPath: caFile)
            let configuration = Self.configuration(port: port, .init(caFile: caFile))
            let open = try await RedisConnection.connect(configuration: configuration)
            try FileManager.default.removeItem(atPath: caFile)
            try FileManager.default.copyItem(atPath: certificates.otherCAFile, toPath: caFile)
            let cached = try await RedisConnection.connect(configuration: configuration)
            #expect(try await cached.send(RedisCommand("PING")) == .status("PONG"), "the context made before the change is reused")
            await cached.close()
            RedisTLS.forgetContexts()
            let error = try await redisError { try await RedisConnection.connect(configuration: configuration) }
            guard case .tls = error else {
                Issue.record("expected the reread CA file to refuse the server, got \(String(describing: error))")
                return
            }
            #expect(try await open.send(RedisCommand("PING")) == .status("PONG"), "the open connection keeps its TLS session")
            await open.close()
        }
    }

    /// Files that cannot be used are reported before any connection, naming the file.
    @Test func badFilesAreNamed() async throws {
        let certificates = try await TestCertificates.make()
        let missing = certificates.directory + "/missing.crt"
        for (settings, named) in [
            (RedisTLSSettings(caFile: missing), missing),
            (RedisTLSSettings(caFile: certificates.serverKeyFile), certificates.serverKeyFile),
            (RedisTLSSettings(certFile: certificates.clientCertFile), "both"),
            (RedisTLSSettings(certFile: certificates.clientCertFile, keyFile: missing), missing),
        ] {
            #expect(throws: RedisError.self) { try RedisTLS.makeContext(settings) }
            do {
                _ = try RedisTLS.makeContext(settings)
            } catch {
                #expect("\(error)".contains(named), "\(error)")
            }
        }
    }
}

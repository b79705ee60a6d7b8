import Configuration
import Foundation
import GatewayCore
import GatewayTesting
import Testing

@Suite struct ConfigValidationTests {
    private func read(
        yaml: String? = nil, environment: [String: String] = [:], overrides: [String: String] = [:]
    ) async throws -> Result<CommonSettings, ConfigValidationError> {
        var path: String?
        if let yaml {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("gc-config-\(UUID().uuidString).yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            path = file.path
        }
        let sources = ConfigSources(filePath: path, overrides: overrides, environmentPrefix: ["gc", "engine"], environment: environment)
        do {
            var v = ConfigValidator(try await sources.makeReader())
            let settings = CommonSettings.read(&v, serviceName: "test", defaultAdminPort: 9101)
            try v.finish()
            return .success(settings)
        } catch {
            return .failure(error)
        }
    }

    /// Every bad key is reported at once, each naming the key, the value and what was expected.
    @Test func everyProblemIsReportedWithItsKey() async throws {
        let yaml = """
            admin:
              port: seventy
              token: short
            redis:
              url: "http://nope"
              commandTimeout: soon
              poolSize: 0
            log:
              level: loud
            """
        guard case .failure(let error) = try await read(yaml: yaml) else {
            Issue.record("invalid configuration was accepted")
            return
        }
        let keys = Set(error.problems.map(\.key))
        #expect(keys == ["admin.port", "admin.token", "redis.url", "redis.commandTimeout", "redis.poolSize", "log.level"])
        let port = try #require(error.problems.first { $0.key == "admin.port" })
        #expect(port.value == "seventy")
        #expect(port.expected.contains("integer"))
        // The token is a secret: its value never appears in the error.
        #expect(!error.description.contains("short"))
        #expect(error.description.contains("admin.token"))
    }

    /// Redis Cluster settings: seeds as a YAML list or comma-separated (IPv6 in brackets); a bad seed, seeds
    /// without `redis.cluster`, and a database other than 0 on a cluster are each reported with their key.
    @Test func redisClusterSettings() async throws {
        let token = "abcdefghijklmnopqrstuvwxyz012345"
        let yaml = """
            admin:
              token: \(token)
            redis:
              url: redis://10.0.0.5:6379
              cluster: true
              clusterSeeds: [10.0.0.6:6379, "[::1]:7000"]
            """
        let settings = try await read(yaml: yaml).get()
        #expect(settings.redis.cluster)
        #expect(settings.redis.clusterSeeds == [RedisNodeAddress(host: "10.0.0.6", port: 6379), RedisNodeAddress(host: "::1", port: 7000)])
        #expect(settings.redis.seedURLs.map(\.address) == ["10.0.0.5:6379", "10.0.0.6:6379", "[::1]:7000"])
        let listed = try await read(overrides: ["admin.token": token, "redis.cluster": "true", "redis.clusterSeeds": "a:1, b:2"]).get()
        #expect(listed.redis.clusterSeeds.map(\.description) == ["a:1", "b:2"])

        guard
            case .failure(let error) = try await read(overrides: [
                "admin.token": token, "redis.cluster": "true", "redis.clusterSeeds": "a:1,nohost", "redis.url": "redis://10.0.0.5:6379/3",
            ])
        else {
            Issue.record("invalid cluster settings were accepted")
            return
        }
        #expect(Set(error.problems.map(\.key)) == ["redis.clusterSeeds", "redis.url"], "\(error)")
        guard case .failure(let seedsAlone) = try await read(overrides: ["admin.token": token, "redis.clusterSeeds": "a:1"]) else {
            Issue.record("seeds without redis.cluster were accepted")
            return
        }
        #expect(seedsAlone.problems.map(\.key) == ["redis.clusterSeeds"])
    }

    /// TLS to Redis: `rediss://` with `redis.tls.*`; a CA file that cannot be read is reported under its
    /// key at start-up, and TLS settings with a plain `redis://` URL under `redis.url`.
    @Test func redisTLSSettings() async throws {
        let token = "abcdefghijklmnopqrstuvwxyz012345"
        let certificates = try await TestCertificates.make()
        let settings = try await read(overrides: [
            "admin.token": token, "redis.url": "rediss://10.0.0.5:6380", "redis.tls.caFile": certificates.caFile,
            "redis.tls.certFile": certificates.clientCertFile, "redis.tls.keyFile": certificates.clientKeyFile,
            "redis.tls.serverName": "redis.internal",
        ]).get()
        #expect(settings.redis.url.tls)
        #expect(settings.redis.url.description == "rediss://10.0.0.5:6380/0")
        #expect(
            settings.redis.tls
                == RedisTLSSettings(
                    caFile: certificates.caFile, certFile: certificates.clientCertFile, keyFile: certificates.clientKeyFile,
                    serverName: "redis.internal"))

        guard
            case .failure(let missing) = try await read(overrides: [
                "admin.token": token, "redis.url": "rediss://10.0.0.5:6380", "redis.tls.caFile": "/nonexistent/ca.crt",
            ])
        else {
            Issue.record("a missing CA file was accepted")
            return
        }
        #expect(missing.problems.map(\.key) == ["redis.tls.caFile"], "\(missing)")
        #expect(missing.description.contains("/nonexistent/ca.crt"))

        guard case .failure(let plain) = try await read(overrides: ["admin.token": token, "redis.tls.caFile": certificates.caFile]) else {
            Issue.record("TLS settings with a redis:// URL were accepted")
            return
        }
        #expect(plain.problems.map(\.key) == ["redis.url"], "\(plain)")
    }

    /// A missing admin token is an error: there is no default token.
    @Test func adminTokenIsRequired() async throws {
        guard case .failure(let error) = try await read(yaml: "log:\n  level: info\n") else {
            Issue.record("configuration without admin.token was accepted")
            return
        }
        #expect(error.problems.map(\.key) == ["admin.token"])
        #expect(error.problems[0].value == nil)
    }

    /// `admin.tokensFile`: named tokens alone or beside `admin.token` (named `admin`); each bad file is
    /// reported under the key with the line at fault, and never with a token in the message.
    @Test func namedAdminTokens() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gc-tokens-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func file(_ text: String) throws -> String {
            let path = directory + "/\(UUID().uuidString)"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let good = try file("# operators\nalice: alice-token-0123456789\n\nci.deploy-1:ci-token-0123456789ab\n")
        let alone = try await read(overrides: ["admin.tokensFile": good]).get()
        #expect(alone.admin.tokensByName == ["alice": "alice-token-0123456789", "ci.deploy-1": "ci-token-0123456789ab"])
        let both = try await read(overrides: ["admin.tokensFile": good, "admin.token": "0123456789abcdef"]).get()
        #expect(both.admin.tokensByName.keys.sorted() == ["admin", "alice", "ci.deploy-1"])

        let bad: [(String, String)] = [
            ("alice alice-token-0123456789\n", "line 1: expected name:token"),
            ("alice:short\n", "line 1: the token of alice is shorter than 16 characters"),
            ("alice:alice-token-0123456789\nalice:other-token-0123456789\n", "line 2: the name alice is used twice"),
            ("alice:same-token-0123456789\nbob:same-token-0123456789\n", "line 2: the token of bob is another name's too"),
            ("al ice:alice-token-0123456789\n", "line 1: the name must be"),
            ("admin:admin-token-0123456789\n", "line 1: the name admin is used twice"),
            ("# nothing\n", "no name:token line"),
        ]
        for (text, message) in bad {
            guard case .failure(let error) = try await read(overrides: ["admin.tokensFile": try file(text), "admin.token": "0123456789abcdef"]) else {
                Issue.record("accepted \(text)")
                continue
            }
            #expect(error.problems.map(\.key) == ["admin.tokensFile"], "\(text)")
            #expect(error.description.contains(message), "\(error.description)")
            #expect(!error.description.contains("-token-0123456789"), "a token in the message: \(error.description)")
        }
    }

    /// Environment variables override the file, and --set overrides both.
    @Test func precedenceIsFlagsThenEnvironmentThenFile() async throws {
        let yaml = """
            admin:
              port: 9001
              token: "0123456789abcdef-file"
            redis:
              commandTimeout: 5s
            log:
              format: json
            """
        let env = ["GC_ENGINE_ADMIN_PORT": "9002", "GC_ENGINE_REDIS_COMMAND_TIMEOUT": "250ms"]
        let result = try await read(yaml: yaml, environment: env, overrides: ["admin.port": "9003"])
        let settings = try result.get()
        #expect(settings.admin.port == 9003)
        #expect(settings.redis.commandTimeout == .milliseconds(250))
        #expect(settings.logFormat == .json)
        #expect(settings.admin.token == "0123456789abcdef-file")
    }

    /// A file that does not exist is reported against the `config` key.
    @Test func missingFileIsAProblem() async throws {
        let sources = ConfigSources(filePath: "/nonexistent/gc.yaml", environmentPrefix: ["gc", "engine"], environment: [:])
        await #expect(throws: ConfigValidationError.self) { _ = try await sources.makeReader() }
    }

    /// Durations and sizes accept the documented forms and refuse the rest.
    @Test func durationAndSizeParsing() {
        #expect(ConfigValidator.parseDuration("250ms") == .milliseconds(250))
        #expect(ConfigValidator.parseDuration("2s") == .seconds(2))
        #expect(ConfigValidator.parseDuration("1.5s") == .milliseconds(1500))
        #expect(ConfigValidator.parseDuration("5m") == .seconds(300))
        #expect(ConfigValidator.parseDuration("3") == .seconds(3))
        #expect(ConfigValidator.parseDuration("-1s") == nil)
        #expect(ConfigValidator.parseDuration("soon") == nil)
        #expect(ConfigValidator.parseByteSize("64KiB") == 65536)
        #expect(ConfigValidator.parseByteSize("1MiB") == 1 << 20)
        #expect(ConfigValidator.parseByteSize("512") == 512)
        #expect(ConfigValidator.parseByteSize("lots") == nil)
    }

    /// `--set` pairs must be key=value.
    @Test func malformedOverrideIsRejected() {
        #expect(throws: ConfigValidationError.self) { try ConfigSources.parseOverrides(["admin.port"]) }
        #expect((try? ConfigSources.parseOverrides(["a.b=c=d"]))?["a.b"] == "c=d")
    }
}

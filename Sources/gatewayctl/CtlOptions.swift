import ArgumentParser
import Foundation
import GatewayCore
import Logging

/// Where gatewayctl finds the cluster, and how it prints.
struct CtlOptions: ParsableArguments {
    @Option(help: "Balancer admin URL (default http://127.0.0.1:9103).") var balancer: String?
    @Option(help: "Engine admin URL (default http://127.0.0.1:9101).") var engine: String?
    @Option(help: "Redis URL, for cluster-wide purges and status (default redis://127.0.0.1:6379).") var redis: String?
    @Flag(help: "The Redis URL is a node of a Redis Cluster.") var redisCluster = false
    @Option(help: "PEM file of the CAs a rediss:// URL's server certificate must chain to (default: the system's).") var redisCaFile: String?
    @Option(help: "Admin bearer token.") var token: String?
    @Option(help: "File holding the admin bearer token.") var tokenFile: String?
    @Option(help: "Key prefix of the cluster's Redis keys.") var keyPrefix: String?
    @Option(help: "Config file of key=value lines.") var config: String?
    @Flag(help: "Print JSON instead of tables.") var json = false

    private func fileSettings() throws -> [String: String] {
        let env = ProcessInfo.processInfo.environment
        let explicit = config ?? env["GATEWAYCTL_CONFIG"]
        let path = explicit ?? (env["HOME"].map { $0 + "/.config/gatewayctl/config" } ?? "")
        guard !path.isEmpty, FileManager.default.fileExists(atPath: path) else {
            if let explicit { throw CtlError("config file \(explicit) does not exist") }
            return [:]
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CtlError("cannot read config file \(path)") }
        var settings: [String: String] = [:]
        for (n, line) in text.split(separator: "\n").enumerated() {
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let eq = trimmed.firstIndex(of: "=") else { throw CtlError("\(path):\(n + 1): expected key=value") }
            settings[String(trimmed[..<eq]).trimmingWhitespace()] = String(trimmed[trimmed.index(after: eq)...]).trimmingWhitespace()
        }
        return settings
    }

    private func setting(_ flag: String?, env name: String, file key: String, default value: String?) throws -> String? {
        if let flag { return flag }
        if let v = ProcessInfo.processInfo.environment[name], !v.isEmpty { return v }
        if let v = try fileSettings()[key] { return v }
        return value
    }

    func balancerURL() throws -> String { try setting(balancer, env: "GATEWAYCTL_BALANCER", file: "balancer", default: "http://127.0.0.1:9103")! }
    func engineURL() throws -> String { try setting(engine, env: "GATEWAYCTL_ENGINE", file: "engine", default: "http://127.0.0.1:9101")! }
    func redisURL() throws -> String { try setting(redis, env: "GATEWAYCTL_REDIS", file: "redis", default: "redis://127.0.0.1:6379")! }
    /// The client configuration for ``redisURL()``; a cluster client with `--redis-cluster`,
    /// `GATEWAYCTL_REDIS_CLUSTER=true` or `redis_cluster=true` in the config file.
    func redisConfiguration() throws -> RedisConfiguration {
        let url = try RedisURL(parsing: try redisURL())
        var configuration = RedisConfiguration(url: url)
        configuration.poolSize = 2
        configuration.clientName = "gatewayctl"
        let cluster = redisCluster ? "true" : try setting(nil, env: "GATEWAYCTL_REDIS_CLUSTER", file: "redis_cluster", default: "false")!
        guard let isCluster = ConfigValidator.parseBool(cluster) else { throw CtlError("redis_cluster must be true or false, got \(cluster)") }
        configuration.cluster = isCluster
        if configuration.cluster && url.database != 0 { throw CtlError("a Redis Cluster has only database 0, got \(url)") }
        if let caFile = try setting(redisCaFile, env: "GATEWAYCTL_REDIS_CA_FILE", file: "redis_ca_file", default: nil) {
            guard url.tls else { throw CtlError("a Redis CA file needs a rediss:// URL, got \(url)") }
            configuration.tls.caFile = caFile
        }
        if url.tls {
            do {
                _ = try RedisTLS.makeContext(configuration.tls)
            } catch {
                throw CtlError("\(error)")
            }
        }
        return configuration
    }

    /// A client for ``redisConfiguration()`` that logs only warnings and errors (to stderr).
    func redisClient() throws -> RedisClient {
        var logger = Logger(label: "gatewayctl")
        logger.logLevel = .warning
        return RedisClient(configuration: try redisConfiguration(), logger: logger)
    }

    func prefix() throws -> String { try setting(keyPrefix, env: "GATEWAYCTL_KEY_PREFIX", file: "key_prefix", default: "gc")! }

    func adminToken() throws -> String {
        if let value = try setting(token, env: "GATEWAYCTL_TOKEN", file: "token", default: nil), !value.isEmpty { return value }
        if let file = try setting(tokenFile, env: "GATEWAYCTL_TOKEN_FILE", file: "token_file", default: nil) {
            do { return try readSecretFile(file) } catch { throw CtlError("cannot read token file \(file)") }
        }
        throw CtlError("no admin token: pass --token, --token-file, or set GATEWAYCTL_TOKEN")
    }

    func balancerClient() throws -> AdminClient { AdminClient(base: try balancerURL(), token: try adminToken()) }
    func engineClient() throws -> AdminClient { AdminClient(base: try engineURL(), token: try adminToken()) }
}

/// A failure gatewayctl reports in one line.
struct CtlError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command body; any error becomes `gatewayctl: <reason>` on stderr and exit status 1.
func runReporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("gatewayctl: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

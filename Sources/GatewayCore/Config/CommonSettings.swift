import Logging

/// Settings every service shares: logging, Redis, the admin listener, shutdown.
public struct CommonSettings: Sendable {
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    public var redis: RedisConfiguration
    /// Namespace of every key this cluster writes in Redis (`gc` gives `gc:nodes`, `gc:apis`, ...).
    public var keyPrefix: String
    public var admin: AdminListenerSettings
    /// How long a graceful shutdown (SIGTERM) may take before the service is stopped hard.
    public var shutdownDeadline: Duration

    /// Reads the shared keys.
    ///
    /// - Parameters:
    ///   - serviceName: used for the Redis client name.
    ///   - defaultAdminPort: the admin listener's default port for this service.
    public static func read(_ v: inout ConfigValidator, serviceName: String, defaultAdminPort: Int) -> CommonSettings {
        let level = v.choice("log.level", default: "info", allowed: Logger.Level.allCases.map(\.rawValue))
        let format = v.choice("log.format", default: "logfmt", allowed: LogFormat.allCases.map(\.rawValue))
        var redis = RedisConfiguration(url: v.redisURL("redis.url", default: "redis://127.0.0.1:6379"))
        redis.poolSize = v.int("redis.poolSize", default: 32, in: 1...1024)
        redis.connectTimeout = v.duration("redis.connectTimeout", default: .seconds(2), min: .milliseconds(1))
        redis.commandTimeout = v.duration("redis.commandTimeout", default: .seconds(2), min: .milliseconds(1))
        redis.leaseTimeout = v.duration("redis.leaseTimeout", default: .seconds(2), min: .milliseconds(1))
        redis.idleTimeout = v.duration("redis.idleTimeout", default: .seconds(60), min: .milliseconds(100))
        redis.maxReplyBytes = v.byteSize("redis.maxReplyBytes", default: 64 << 20, in: 1024...(1 << 30))
        redis.clientName = serviceName
        redis.cluster = v.bool("redis.cluster", default: false)
        for seed in v.stringList("redis.clusterSeeds", default: []) {
            if let address = RedisNodeAddress(parsing: seed) {
                redis.clusterSeeds.append(address)
            } else {
                v.report("redis.clusterSeeds", value: seed, expected: "host:port entries (comma-separated or a list)")
            }
        }
        if !redis.cluster && !redis.clusterSeeds.isEmpty {
            v.report(
                "redis.clusterSeeds", value: redis.clusterSeeds.map(\.description).joined(separator: ","),
                expected: "no seeds unless redis.cluster is true")
        }
        redis.tls = RedisTLSSettings(
            caFile: v.optionalString("redis.tls.caFile"), certFile: v.optionalString("redis.tls.certFile"),
            keyFile: v.optionalString("redis.tls.keyFile"), serverName: v.optionalString("redis.tls.serverName"))
        if redis.url.tls {
            // The files are read now, so a missing or bad one stops the start with its key named.
            do {
                _ = try RedisTLS.makeContext(redis.tls)
            } catch {
                let key = Self.redisTLSKey(blamedBy: error, in: redis.tls)
                v.report(key, value: nil, expected: "\(error)")
            }
        } else if redis.tls != RedisTLSSettings() {
            v.report("redis.url", value: redis.url.description, expected: "a rediss:// URL when redis.tls.* is set (TLS to Redis)")
        }
        if redis.cluster && redis.url.database != 0 {
            v.report("redis.url", value: redis.url.description, expected: "database 0 (Redis Cluster has no other)")
        }
        let keyPrefix = v.string("redis.keyPrefix", default: "gc")
        if keyPrefix.isEmpty || keyPrefix.contains(where: { $0 == " " || $0 == "{" || $0 == "}" }) {
            v.report("redis.keyPrefix", value: keyPrefix, expected: "a non-empty prefix without spaces or braces")
        }
        let admin = AdminListenerSettings.read(&v, defaultPort: defaultAdminPort)
        let shutdownDeadline = v.duration("shutdown.deadline", default: .seconds(30), min: .milliseconds(100))
        return CommonSettings(
            logLevel: Logger.Level(rawValue: level) ?? .info, logFormat: LogFormat(rawValue: format) ?? .logfmt,
            redis: redis, keyPrefix: keyPrefix, admin: admin, shutdownDeadline: shutdownDeadline)
    }
}

extension CommonSettings {
    /// The `redis.tls.*` key whose file a TLS context error names.
    static func redisTLSKey(blamedBy error: RedisError, in settings: RedisTLSSettings) -> String {
        let files = ClientTLSFiles(caFile: settings.caFile, certFile: settings.certFile, keyFile: settings.keyFile)
        return "redis.tls." + files.key(blamedBy: "\(error)")
    }
}

/// Where a service's admin API listens and the bearer tokens it accepts.
public struct AdminListenerSettings: Sendable {
    public var host: String
    public var port: Int
    /// The bearer token (`admin.token`, named `admin` in audit lines) every admin call but the probes
    /// (`/health`, `/ready`) must carry, or one of ``namedTokens``; empty when only those are set.
    public var token: String
    /// Tokens by the name audit lines give their caller (`admin.tokensFile`: one per operator or tool).
    public var namedTokens: [String: String]
    public var maxBodyBytes: Int

    public init(host: String, port: Int, token: String, namedTokens: [String: String] = [:], maxBodyBytes: Int = 1 << 20) {
        self.host = host
        self.port = port
        self.token = token
        self.namedTokens = namedTokens
        self.maxBodyBytes = maxBodyBytes
    }

    /// Every accepted token by its caller name.
    public var tokensByName: [String: String] {
        var tokens = namedTokens
        if !token.isEmpty { tokens["admin"] = token }
        return tokens
    }

    static func read(_ v: inout ConfigValidator, defaultPort: Int) -> AdminListenerSettings {
        let host = v.string("admin.host", default: "127.0.0.1")
        let port = v.int("admin.port", default: defaultPort, in: 0...65535)
        var token = v.optionalString("admin.token", secret: true)
        if token == nil, let file = v.optionalString("admin.tokenFile") {
            do {
                token = try readSecretFile(file)
            } catch {
                v.report("admin.tokenFile", value: file, expected: "a readable file holding the token (\(error))")
            }
        }
        var named: [String: String] = [:]
        if let file = v.optionalString("admin.tokensFile") {
            do {
                named = try parseTokensFile(try String(contentsOfFile: file, encoding: .utf8), reserved: token == nil ? [] : ["admin"])
            } catch {
                v.report("admin.tokensFile", value: file, expected: "a readable file of name:token lines (\(error))")
            }
        }
        if token == nil && named.isEmpty {
            v.report(
                "admin.token", value: nil,
                expected: "a bearer token for the admin API (set admin.token, admin.tokenFile or admin.tokensFile; there is no default)")
        } else if let t = token, t.count < 16 {
            v.report("admin.token", value: t, expected: "at least 16 characters", secret: true)
        }
        let maxBody = v.byteSize("admin.maxBodyBytes", default: 1 << 20, in: 1024...(64 << 20))
        return AdminListenerSettings(host: host, port: port, token: token ?? "", namedTokens: named, maxBodyBytes: maxBody)
    }

    /// `name:token` lines (blank lines and `#` comments ignored): names of letters, digits, `.`, `_`
    /// and `-` (at most 64), each once; tokens of at least 16 characters, each once. Errors give the
    /// line number, never the token.
    static func parseTokensFile(_ text: String, reserved: Set<String>) throws(TokensFileError) -> [String: String] {
        var tokens: [String: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let number = index + 1
            guard let colon = line.firstIndex(of: ":") else { throw TokensFileError("line \(number): expected name:token") }
            let name = String(line[..<colon]).trimmingWhitespace()
            let token = String(line[line.index(after: colon)...]).trimmingWhitespace()
            let allowed = name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
            }
            guard !name.isEmpty, name.utf8.count <= 64, allowed else {
                throw TokensFileError("line \(number): the name must be 1–64 letters, digits, '.', '_' or '-'")
            }
            guard !reserved.contains(name), tokens[name] == nil else { throw TokensFileError("line \(number): the name \(name) is used twice") }
            guard token.count >= 16 else { throw TokensFileError("line \(number): the token of \(name) is shorter than 16 characters") }
            guard !tokens.values.contains(token) else { throw TokensFileError("line \(number): the token of \(name) is another name's too") }
            tokens[name] = token
        }
        guard !tokens.isEmpty else { throw TokensFileError("no name:token line") }
        return tokens
    }
}

/// Reads a secret from a file (for example a systemd credential), without a trailing newline.
public func readSecretFile(_ path: String) throws -> String {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return text.trimmingWhitespace()
}

import Foundation

/// A problem in `admin.tokensFile`.
struct TokensFileError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

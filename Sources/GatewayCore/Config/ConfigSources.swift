import Configuration
import SystemPackage

/// Where a service's configuration comes from, highest precedence first: command-line overrides,
/// then environment variables with the service's prefix, then the YAML file.
///
/// A key such as `admin.port` is `--set admin.port=9100` on the command line, `GC_ENGINE_ADMIN_PORT`
/// in the environment (prefix `GC_ENGINE`), and `admin: { port: 9100 }` in YAML. Camel-case words are
/// split with underscores in variable names: `redis.commandTimeout` is `GC_ENGINE_REDIS_COMMAND_TIMEOUT`.
public struct ConfigSources: Sendable {
    /// The YAML file, if any.
    public var filePath: String?
    /// `key=value` overrides from the command line.
    public var overrides: [String: String]
    /// Environment prefix words, for example `["gc", "engine"]` for `GC_ENGINE_…`.
    public var environmentPrefix: [String]
    /// The environment to read; the process's by default.
    public var environment: [String: String]?

    public init(filePath: String? = nil, overrides: [String: String] = [:], environmentPrefix: [String], environment: [String: String]? = nil) {
        self.filePath = filePath
        self.overrides = overrides
        self.environmentPrefix = environmentPrefix
        self.environment = environment
    }

    /// Parses `key=value` strings (from repeated `--set` flags).
    public static func parseOverrides(_ pairs: [String]) throws(ConfigValidationError) -> [String: String] {
        var result: [String: String] = [:]
        var problems: [ConfigProblem] = []
        for pair in pairs {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                problems.append(ConfigProblem(key: "--set", value: pair, expected: "key=value"))
                continue
            }
            result[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        if !problems.isEmpty { throw ConfigValidationError(problems: problems) }
        return result
    }

    /// Builds the reader over all sources. A missing or unparsable file is reported as a problem on `config`.
    public func makeReader() async throws(ConfigValidationError) -> ConfigReader {
        var providers: [any ConfigProvider] = []
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in overrides {
            values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(
                .string(value), isSecret: Redactor.isSecretKey(key))
        }
        providers.append(InMemoryProvider(name: "command line", values: values))
        let environment = EnvironmentVariablesProvider(
            environmentVariables: self.environment ?? ProcessInfoEnvironment.current,
            secretsSpecifier: .dynamic { key, _ in Redactor.isSecretKey(key) })
        providers.append(environment.prefixKeys(with: ConfigKey(environmentPrefix)))
        if let filePath {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(filePath)))
            } catch {
                throw ConfigValidationError(problems: [
                    ConfigProblem(key: "config", value: filePath, expected: "a readable YAML file (\(error))")
                ])
            }
        }
        return ConfigReader(providers: providers)
    }
}

import Foundation

enum ProcessInfoEnvironment {
    static var current: [String: String] { ProcessInfo.processInfo.environment }
}

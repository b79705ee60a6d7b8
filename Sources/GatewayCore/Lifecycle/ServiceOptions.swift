import ArgumentParser

/// The options every service binary takes.
public struct ServiceOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: ArgumentHelp("YAML configuration file.", valueName: "path"))
    public var config: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override one configuration key, e.g. --set admin.port=9100 (repeatable; beats the environment and the file).", valueName: "key=value"))
    public var overrides: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("Log level (trace, debug, info, notice, warning, error, critical); same as --set log.level=…", valueName: "level"))
    public var logLevel: String?

    @Option(name: .long, help: ArgumentHelp("Log line format: logfmt or json; same as --set log.format=…", valueName: "format"))
    public var logFormat: String?

    @Flag(name: .long, help: "Validate the configuration, print every problem, and exit 0 when it is valid or 1 when not.")
    public var checkConfig = false

    public init() {}

    /// The command-line overrides, with the named flags folded in.
    public func overridePairs() throws(ConfigValidationError) -> [String: String] {
        var pairs = try ConfigSources.parseOverrides(overrides)
        if let logLevel { pairs["log.level"] = logLevel }
        if let logFormat { pairs["log.format"] = logFormat }
        return pairs
    }
}

/// The version every binary reports with `--version`.
public enum GatewayVersion {
    public static let current = "0.1.0"
}

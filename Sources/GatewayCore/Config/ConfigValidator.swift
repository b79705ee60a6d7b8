import Configuration

/// Reads typed values from a `ConfigReader` and collects every problem instead of stopping at the first.
///
/// Values are read as text and parsed here, so a YAML file, an environment variable and a command-line
/// override are held to the same rules and every message names the key, the value and what is expected.
///
/// ```swift
/// var v = ConfigValidator(reader)
/// let port = v.int("admin.port", default: 9100, in: 1...65535)
/// let token = v.requiredString("admin.token", secret: true)
/// try v.finish()   // throws ConfigValidationError listing every problem
/// ```
public struct ConfigValidator {
    public let reader: ConfigReader
    public private(set) var problems: [ConfigProblem] = []
    private let consulted = ConsultedKeys()

    /// Every key the reading code asked for, set or not: a key a source sets outside this set is not
    /// a setting of the service (see ``ConfigSources/unusedKeys(consulted:)``).
    public var consultedKeys: Set<String> { consulted.keys }

    public init(_ reader: ConfigReader) {
        self.reader = reader
    }

    /// Throws every problem found so far, if any.
    public func finish() throws(ConfigValidationError) {
        if !problems.isEmpty { throw ConfigValidationError(problems: problems) }
    }

    public mutating func report(_ key: String, value: String?, expected: String, secret: Bool = false) {
        let shown = value.map { secret || Redactor.isSecretKey(key) ? "***" : $0 }
        problems.append(ConfigProblem(key: key, value: shown, expected: expected))
    }

    /// The raw text of a key, or nil if no source sets it.
    public func raw(_ key: String, secret: Bool = false) -> String? {
        consulted.keys.insert(key)
        return reader.string(forKey: ConfigKey(key), isSecret: secret || Redactor.isSecretKey(key))
    }

    public mutating func string(_ key: String, default defaultValue: String, secret: Bool = false) -> String {
        raw(key, secret: secret) ?? defaultValue
    }

    public mutating func optionalString(_ key: String, secret: Bool = false) -> String? {
        guard let value = raw(key, secret: secret), !value.isEmpty else { return nil }
        return value
    }

    public mutating func requiredString(_ key: String, secret: Bool = false, expected: String = "a non-empty string") -> String {
        guard let value = raw(key, secret: secret), !value.isEmpty else {
            report(key, value: nil, expected: expected)
            return ""
        }
        return value
    }

    /// The key's value when a source gives it as a list (YAML sequence), else nil.
    public func stringArray(_ key: String) -> [String]? {
        consulted.keys.insert(key)
        return reader.stringArray(forKey: ConfigKey(key))
    }

    public mutating func stringList(_ key: String, default defaultValue: [String]) -> [String] {
        if let array = stringArray(key) { return array }
        guard let text = raw(key) else { return defaultValue }
        return text.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    public mutating func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>? = nil) -> Int {
        guard let text = raw(key) else { return defaultValue }
        let expected = range.map { "an integer in \($0.lowerBound)...\($0.upperBound)" } ?? "an integer"
        guard let value = Int(text.trimmingWhitespace()), range?.contains(value) ?? true else {
            report(key, value: text, expected: expected)
            return defaultValue
        }
        return value
    }

    public mutating func double(_ key: String, default defaultValue: Double, in range: ClosedRange<Double>? = nil) -> Double {
        guard let text = raw(key) else { return defaultValue }
        let expected = range.map { "a number in \($0.lowerBound)...\($0.upperBound)" } ?? "a number"
        guard let value = Double(text.trimmingWhitespace()), value.isFinite, range?.contains(value) ?? true else {
            report(key, value: text, expected: expected)
            return defaultValue
        }
        return value
    }

    public mutating func bool(_ key: String, default defaultValue: Bool) -> Bool {
        guard let text = raw(key) else { return defaultValue }
        guard let value = Self.parseBool(text) else {
            report(key, value: text, expected: "true or false")
            return defaultValue
        }
        return value
    }

    /// `true`, `yes`, `on`, `1` and `false`, `no`, `off`, `0`, in any case; nil for anything else.
    public static func parseBool(_ text: String) -> Bool? {
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }

    /// A duration such as `250ms`, `2s`, `1.5s`, `5m`, `1h`; a bare number is seconds.
    public mutating func duration(
        _ key: String, default defaultValue: Duration, min minimum: Duration = .zero, max maximum: Duration? = nil
    ) -> Duration {
        guard let text = raw(key) else { return defaultValue }
        var expected = "a duration such as 250ms, 2s or 5m"
        if minimum > .zero { expected += ", at least \(Self.format(minimum))" }
        if let maximum { expected += ", at most \(Self.format(maximum))" }
        guard let value = Self.parseDuration(text), value >= minimum, maximum.map({ value <= $0 }) ?? true else {
            report(key, value: text, expected: expected)
            return defaultValue
        }
        return value
    }

    /// A size such as `64KiB`, `1MiB`, `512` (bytes), `8k`.
    public mutating func byteSize(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>? = nil) -> Int {
        guard let text = raw(key) else { return defaultValue }
        var expected = "a size such as 512, 64KiB or 1MiB"
        if let range { expected += " between \(range.lowerBound) and \(range.upperBound) bytes" }
        guard let value = Self.parseByteSize(text), range?.contains(value) ?? true else {
            report(key, value: text, expected: expected)
            return defaultValue
        }
        return value
    }

    /// One of a fixed set of words.
    public mutating func choice(_ key: String, default defaultValue: String, allowed: [String]) -> String {
        guard let text = raw(key) else { return defaultValue }
        let value = text.trimmingWhitespace()
        guard allowed.contains(value) else {
            report(key, value: text, expected: "one of " + allowed.joined(separator: ", "))
            return defaultValue
        }
        return value
    }

    public mutating func redisURL(_ key: String, default defaultValue: String) -> RedisURL {
        let text = raw(key, secret: false) ?? defaultValue
        do {
            return try RedisURL(parsing: text)
        } catch {
            report(key, value: RedisURL.redacted(text), expected: "redis://[user:password@]host:port[/db] (\(error))")
            return RedisURL(host: "127.0.0.1")
        }
    }

    /// An HTTP(S) URL with a host.
    public mutating func httpURL(_ key: String, default defaultValue: String?) -> String? {
        guard let text = raw(key) ?? defaultValue else { return nil }
        guard text.hasPrefix("http://") || text.hasPrefix("https://"), text.split(separator: "/").count >= 2 else {
            report(key, value: text, expected: "an http:// or https:// URL")
            return defaultValue
        }
        return text
    }

    // MARK: Parsing

    public static func parseDuration(_ text: String) -> Duration? {
        let t = text.trimmingWhitespace().lowercased()
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let n = Double(t.dropLast(suffix.count)), n.isFinite, n >= 0 else { return nil }
            return .nanoseconds(Int64(n * scale * 1e9))
        }
        guard let n = Double(t), n.isFinite, n >= 0 else { return nil }
        return .nanoseconds(Int64(n * 1e9))
    }

    public static func parseByteSize(_ text: String) -> Int? {
        let t = text.trimmingWhitespace().lowercased()
        let units: [(String, Int)] = [
            ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000),
            ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1),
        ]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let n = Int(t.dropLast(suffix.count).trimmingWhitespace()), n >= 0 else { return nil }
            return n * scale
        }
        guard let n = Int(t), n >= 0 else { return nil }
        return n
    }

    static func format(_ d: Duration) -> String {
        let ms = d.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and newlines.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

/// The keys a ``ConfigValidator`` was asked for (shared by its copies).
private final class ConsultedKeys {
    var keys: Set<String> = []
}

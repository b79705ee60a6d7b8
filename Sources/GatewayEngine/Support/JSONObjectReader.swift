import GatewayCore

/// Collects the problems found while reading a JSON document. Used by one reader on one task.
final class ProblemCollector {
    private(set) var problems: [ConfigProblem] = []

    /// Records a problem; values of secret fields (`…secret`) are shown as `***`.
    func report(_ path: String, _ value: JSONValue?, expected: String) {
        report(path, shown: value?.shown, expected: expected)
    }

    func report(_ path: String, shown: String?, expected: String) {
        let shown = Redactor.isSecretKey(path) ? shown.map { _ in "***" } : shown
        problems.append(ConfigProblem(key: path, value: shown, expected: expected))
    }

    /// Whether a problem was already reported at `path` or below it.
    func hasProblem(at path: String) -> Bool {
        problems.contains { $0.key == path || $0.key.hasPrefix(path + ".") || $0.key.hasPrefix(path + "[") }
    }
}

@available(*, unavailable)
extension ProblemCollector: Sendable {}

/// Typed reads from one JSON object that report, rather than throw, every missing or mistyped field with
/// its full path (`targets[1].url`), in the style of `ConfigValidator`.
struct JSONObjectReader {
    let fields: [String: JSONValue]
    let path: String
    let problems: ProblemCollector

    /// Reads `value` as an object, reporting a non-object value and any field not in `known`.
    init?(_ value: JSONValue, path: String, known: [String], problems: ProblemCollector) {
        guard case .object(let fields) = value else {
            problems.report(path.isEmpty ? "(document)" : path, value, expected: "an object")
            return nil
        }
        self.fields = fields
        self.path = path
        self.problems = problems
        for key in fields.keys.sorted() where !known.contains(key) {
            problems.report(child(key), fields[key], expected: "a known field (one of \(known.joined(separator: ", ")))")
        }
    }

    func child(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The field's value, or nil when absent or `null`.
    func value(_ key: String) -> JSONValue? {
        switch fields[key] {
        case .none, .null?: return nil
        case let value?: return value
        }
    }

    func string(_ key: String) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let s) = value else {
            problems.report(child(key), value, expected: "a string")
            return nil
        }
        return s
    }

    func requiredString(_ key: String, expected: String = "a non-empty string") -> String? {
        guard let value = value(key) else {
            problems.report(child(key), nil, expected: expected)
            return nil
        }
        guard case .string(let s) = value, !s.isEmpty else {
            problems.report(child(key), value, expected: expected)
            return nil
        }
        return s
    }

    func bool(_ key: String, default defaultValue: Bool) -> Bool {
        guard let value = value(key) else { return defaultValue }
        guard case .bool(let b) = value else {
            problems.report(child(key), value, expected: "true or false")
            return defaultValue
        }
        return b
    }

    /// `true` or `false`, or nil when absent (a field whose absence keeps a definition's canonical JSON
    /// as it was).
    func optionalBool(_ key: String) -> Bool? {
        value(key) == nil ? nil : bool(key, default: false)
    }

    /// An integer within `range`, or nil when absent.
    func optionalInt(_ key: String, in range: ClosedRange<Int>) -> Int? {
        value(key) == nil ? nil : int(key, default: nil, in: range)
    }

    /// An integer within `range`; a fractional or out-of-range number is reported.
    func int(_ key: String, default defaultValue: Int?, in range: ClosedRange<Int>) -> Int? {
        guard let value = value(key) else {
            if defaultValue == nil {
                problems.report(child(key), nil, expected: "an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return defaultValue
        }
        guard case .number(let n) = value, n.rounded() == n, n >= Double(range.lowerBound), n <= Double(range.upperBound)
        else {
            problems.report(child(key), value, expected: "an integer in \(range.lowerBound)...\(range.upperBound)")
            return defaultValue
        }
        return Int(n)
    }

    /// One of a fixed set of words.
    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default defaultValue: T?) -> T?
    where T.RawValue == String {
        let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
        guard let value = value(key) else {
            if defaultValue == nil { problems.report(child(key), nil, expected: "one of \(allowed)") }
            return defaultValue
        }
        guard case .string(let s) = value, let parsed = T(rawValue: s) else {
            problems.report(child(key), value, expected: "one of \(allowed)")
            return defaultValue
        }
        return parsed
    }

    /// The elements of an array field with their paths (`key[i]`), or nil when absent.
    func array(_ key: String) -> [(path: String, value: JSONValue)]? {
        guard let value = value(key) else { return nil }
        guard case .array(let items) = value else {
            problems.report(child(key), value, expected: "an array")
            return nil
        }
        return items.enumerated().map { ("\(child(key))[\($0.offset)]", $0.element) }
    }

    func stringArray(_ key: String) -> [String]? {
        guard let items = array(key) else { return nil }
        var result: [String] = []
        for (path, item) in items {
            guard case .string(let s) = item else {
                problems.report(path, item, expected: "a string")
                continue
            }
            result.append(s)
        }
        return result
    }

    /// An object of strings (`{"name": "value"}`), or nil when absent; other values are reported.
    func stringMap(_ key: String) -> [String: String]? {
        guard let value = value(key) else { return nil }
        guard case .object(let fields) = value else {
            problems.report(child(key), value, expected: "an object of strings")
            return nil
        }
        var result: [String: String] = [:]
        for (name, item) in fields {
            guard case .string(let s) = item else {
                problems.report("\(child(key)).\(name)", item, expected: "a string")
                continue
            }
            result[name] = s
        }
        return result
    }

    /// A nested object field, or nil when absent, `null` or not an object (reported).
    func object(_ key: String, known: [String]) -> JSONObjectReader? {
        guard let value = value(key) else { return nil }
        return JSONObjectReader(value, path: child(key), known: known, problems: problems)
    }
}

/// One thing wrong with a configuration: which key, what it held, what was expected.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    /// The offending value as given, or nil when the key was missing. Secrets are shown as `***`.
    public var value: String?
    public var expected: String

    public init(key: String, value: String?, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
    }

    public var description: String {
        if let value {
            return "\(key): \"\(value)\" is invalid: expected \(expected)"
        }
        return "\(key): missing: expected \(expected)"
    }
}

/// Every problem found in a configuration, reported together so one run shows them all.
public struct ConfigValidationError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    public var description: String {
        let noun = problems.count == 1 ? "problem" : "problems"
        return "invalid configuration (\(problems.count) \(noun)):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

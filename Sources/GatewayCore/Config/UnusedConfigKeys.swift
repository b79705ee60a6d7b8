import Foundation
import Yams

/// A key a configuration source sets that the service never reads: a typo (`limits.maxBodyByte`), a
/// key of another service, or one that does not apply with the other settings. Without this check it
/// would be ignored without a word.
public struct UnusedConfigKey: Sendable, Hashable, CustomStringConvertible {
    /// The key, dotted (`limits.maxBodyBytes`).
    public var key: String
    /// Where it was set: `config file`, `--set`, or the environment variable's name.
    public var source: String
    /// The read key closest to it, when one is close enough to be a likely typo.
    public var suggestion: String?

    public var description: String {
        "\(source) sets `\(key)`, which this service does not use" + (suggestion.map { " (did you mean `\($0)`?)" } ?? "")
    }
}

extension ConfigSources {
    /// The keys the sources set that are not in `consulted` (the keys the service's reading code asked
    /// for, see ``ConfigValidator/consultedKeys``), sorted by key.
    public func unusedKeys(consulted: Set<String>) -> [UnusedConfigKey] {
        var unused: [UnusedConfigKey] = []
        func check(_ key: String, source: String) {
            guard !consulted.contains(key) else { return }
            unused.append(UnusedConfigKey(key: key, source: source, suggestion: Self.closest(to: key, in: consulted)))
        }
        for key in overrides.keys { check(key, source: "--set") }
        if let filePath, let text = try? String(contentsOfFile: filePath, encoding: .utf8), let tree = try? Yams.load(yaml: text) {
            var keys: [String] = []
            Self.flatten(tree, prefix: "", into: &keys)
            for key in keys { check(key, source: "config file") }
        }
        let prefix = environmentPrefix.map { $0.uppercased() }.joined(separator: "_") + "_"
        let known = Dictionary(consulted.map { (Self.environmentName($0, prefix: prefix), $0) }, uniquingKeysWith: { a, _ in a })
        for name in (environment ?? ProcessInfoEnvironment.current).keys where name.hasPrefix(prefix) && known[name] == nil {
            // Named after the variable: its dotted key is ambiguous (underscores split words and levels).
            let guess = String(name.dropFirst(prefix.count)).lowercased().replacingOccurrences(of: "_", with: ".")
            let suggestion = Self.closest(to: guess, in: consulted).map { Self.environmentName($0, prefix: prefix) }
            unused.append(UnusedConfigKey(key: name, source: "environment", suggestion: suggestion))
        }
        return unused.sorted { ($0.key, $0.source) < ($1.key, $1.source) }
    }

    /// Dotted keys of the leaves of a YAML tree (a list is a leaf: it is one setting's value).
    static func flatten(_ node: Any, prefix: String, into keys: inout [String]) {
        if let mapping = node as? [AnyHashable: Any] {
            for (name, child) in mapping {
                let name = "\(name.base)"
                flatten(child, prefix: prefix.isEmpty ? name : prefix + "." + name, into: &keys)
            }
        } else if let mapping = node as? [String: Any] {
            for (name, child) in mapping { flatten(child, prefix: prefix.isEmpty ? name : prefix + "." + name, into: &keys) }
        } else if !prefix.isEmpty {
            keys.append(prefix)
        }
    }

    /// The environment variable for a key: `redis.commandTimeout` → `GC_ENGINE_REDIS_COMMAND_TIMEOUT`.
    static func environmentName(_ key: String, prefix: String) -> String {
        var name = prefix
        var previousWasLower = false
        for character in key {
            if character == "." {
                name.append("_")
                previousWasLower = false
                continue
            }
            if character.isUppercase && previousWasLower { name.append("_") }
            name.append(contentsOf: character.uppercased())
            previousWasLower = character.isLowercase || character.isNumber
        }
        return name
    }

    /// The key in `candidates` nearest to `key` by edit distance (ignoring case), if within a third of its length.
    static func closest(to key: String, in candidates: Set<String>) -> String? {
        let target = Array(key.lowercased())
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(target, Array(candidate.lowercased()))
            if distance <= max(2, target.count / 3), distance < (best?.1 ?? .max) || (distance == best?.1 && candidate < best!.0) {
                best = (candidate, distance)
            }
        }
        return best?.0
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

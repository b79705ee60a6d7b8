/// Parses `nodes.static`: nodes for a deployment without agents.
///
/// Each entry is `key=value` pairs separated by commas; entries are separated by `;` in one string, or
/// given as a list:
///
/// ```yaml
/// nodes:
///   static: "id=a,host=10.0.0.1,port=8081,weight=2,region=eu;id=b,host=10.0.0.2,port=8081,region=eu"
/// # or
/// nodes:
///   static:
///     - id=a,host=10.0.0.1,port=8081,weight=2,region=eu
///     - id=b,host=10.0.0.2,port=8081,region=eu,zone=eu-1b
/// ```
///
/// Keys: `id` (defaults to `host:port`), `host` (or `address`, required), `port` (required), `weight`
/// (0–10000, default 100), `region`, `zone`.
enum StaticNodes {
    struct Problem: Error, Equatable, CustomStringConvertible {
        var entry: String
        var message: String
        var description: String { "\(message) in \"\(entry)\"" }
    }

    static func parse(entries: [String]) -> Result<[NodeDescriptor], Problem> {
        var nodes: [NodeDescriptor] = []
        var seen: Set<String> = []
        for entry in entries {
            let text = entry.trimmingCharacters(in: " \t\n")
            if text.isEmpty { continue }
            switch parse(entry: text) {
            case .success(let node):
                guard seen.insert(node.id).inserted else {
                    return .failure(Problem(entry: text, message: "duplicate node id \(node.id)"))
                }
                nodes.append(node)
            case .failure(let problem):
                return .failure(problem)
            }
        }
        return .success(nodes)
    }

    /// Splits one string of `;`-separated entries.
    static func parse(_ text: String) -> Result<[NodeDescriptor], Problem> {
        parse(entries: text.split(separator: ";").map(String.init))
    }

    static func parse(entry: String) -> Result<NodeDescriptor, Problem> {
        var fields: [String: String] = [:]
        for pair in entry.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0].trimmingCharacters(in: " \t").lowercased()
            guard parts.count == 2, !key.isEmpty else {
                return .failure(Problem(entry: entry, message: "expected key=value, got \"\(pair)\""))
            }
            guard ["id", "host", "address", "port", "weight", "region", "zone"].contains(key) else {
                return .failure(Problem(entry: entry, message: "unknown key \(key) (expected id, host, port, weight, region, zone)"))
            }
            fields[key] = parts[1].trimmingCharacters(in: " \t")
        }
        guard let host = fields["host"] ?? fields["address"], !host.isEmpty else {
            return .failure(Problem(entry: entry, message: "missing host"))
        }
        guard let portText = fields["port"], let port = Int(portText), (1...65535).contains(port) else {
            return .failure(Problem(entry: entry, message: "port must be 1–65535"))
        }
        var weight = 100
        if let text = fields["weight"] {
            guard let w = Int(text), (0...10_000).contains(w) else {
                return .failure(Problem(entry: entry, message: "weight must be an integer in 0–10000"))
            }
            weight = w
        }
        let id = fields["id"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(host):\(port)"
        guard id.allSatisfy({ !$0.isWhitespace && $0 != "/" }) else {
            return .failure(Problem(entry: entry, message: "id must not contain spaces or slashes"))
        }
        return .success(
            NodeDescriptor(
                id: id, address: host, port: port, region: fields["region"] ?? "", zone: fields["zone"] ?? "",
                source: .static, configuredWeight: weight))
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        guard let first = firstIndex(where: { !chars.contains($0) }), let last = lastIndex(where: { !chars.contains($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

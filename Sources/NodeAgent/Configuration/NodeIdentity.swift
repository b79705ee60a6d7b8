/// The node as the agent advertises it in its record.
public struct NodeIdentity: Sendable, Hashable {
    public var id: String
    public var region: String
    public var zone: String
    /// Where balancers send traffic: the engine's data listener.
    public var address: String
    public var port: Int
    public var weight: Int
    /// `key=value` labels, sorted by key.
    public var labels: [String]

    public init(id: String, region: String, zone: String, address: String, port: Int, weight: Int = 100, labels: [String] = []) {
        self.id = id
        self.region = region
        self.zone = zone
        self.address = address
        self.port = port
        self.weight = weight
        self.labels = labels
    }

    /// The labels as the record stores them: `k=v,k=v`.
    public var labelsText: String { labels.joined(separator: ",") }

    static func isNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-")
    }

    /// Parses `key=value` labels, calling `invalid` for each malformed one; sorted by key, last one wins.
    static func parseLabels(_ items: [String], invalid: (String) -> Void) -> [String] {
        var labels: [String: String] = [:]
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let isValue: (Character) -> Bool = { isNameCharacter($0) || $0 == "/" || $0 == ":" }
            guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy(isValue), parts[1].allSatisfy(isValue) else {
                invalid(item)
                continue
            }
            labels[String(parts[0])] = String(parts[1])
        }
        return labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }
}

/// Which HTTP statuses count as a passed health check: `200`, `200-299`, `2xx`, or a comma-separated list
/// of those (`200,204`, `2xx,301`).
public struct StatusMatcher: Sendable, Hashable, CustomStringConvertible {
    public private(set) var ranges: [ClosedRange<Int>]

    public init(ranges: [ClosedRange<Int>]) {
        self.ranges = ranges
    }

    /// Parses the text form; nil when it is not valid.
    public init?(_ text: String) {
        var ranges: [ClosedRange<Int>] = []
        for part in text.split(separator: ",") {
            let item = part.trimmingWhitespace().lowercased()
            if item.count == 3, item.hasSuffix("xx"), let digit = Int(item.prefix(1)), (1...5).contains(digit) {
                ranges.append(digit * 100...digit * 100 + 99)
            } else if let dash = item.firstIndex(of: "-"), let low = Int(item[..<dash]),
                let high = Int(item[item.index(after: dash)...]), (100...599).contains(low), (low...599).contains(high)
            {
                ranges.append(low...high)
            } else if let code = Int(item), (100...599).contains(code) {
                ranges.append(code...code)
            } else {
                return nil
            }
        }
        guard !ranges.isEmpty else { return nil }
        self.ranges = ranges
    }

    public func matches(_ code: Int) -> Bool {
        ranges.contains { $0.contains(code) }
    }

    public var description: String {
        ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }
}

import Foundation

/// A set of IP addresses and CIDR ranges, IPv4 and IPv6.
///
/// As `listen.trustedProxies`, the proxies in front of a listener whose `X-Forwarded-Proto` and
/// `X-Forwarded-Host` are believed: a request from one keeps the scheme and host its client used, instead
/// of this hop's, and is counted as its original client (``originalClient(chain:)``). From any other
/// client those fields are replaced, so a client cannot make them up. Empty (the default) trusts no one.
/// An API definition's `ip_access` lists are sets of this kind too.
public struct AddressRanges: Sendable, Equatable {
    struct Range: Sendable, Equatable {
        /// 4 or 16 bytes.
        var network: [UInt8]
        var prefixLength: Int
    }

    var ranges: [Range] = []

    public init() {}

    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or `v6/n` for each entry; nil names the bad one.
    public init(parsing entries: [String]) throws(AddressRangeError) {
        for entry in entries {
            let parts = entry.split(separator: "/", maxSplits: 1)
            guard let first = parts.first, let bytes = Self.bytes(of: String(first)) else { throw .invalid(entry) }
            var length = bytes.count * 8
            if parts.count == 2 {
                guard let n = Int(parts[1]), (0...bytes.count * 8).contains(n) else { throw .invalid(entry) }
                length = n
            }
            ranges.append(Range(network: Self.masked(bytes, length), prefixLength: length))
        }
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// The client a request came from through trusted proxies: walking `chain` (an `X-Forwarded-For`
    /// value ending with the connecting peer) from the right, the first address that is not a trusted
    /// proxy; the leftmost when all are. Entries left of an untrusted one are the client's own claims
    /// and are never believed. Nil when the walk meets something that is not an IP address before an
    /// untrusted one (a trusted proxy that wrote nonsense).
    public func originalClient(chain: String) -> String? {
        var leftmost: String?
        for entry in chain.split(separator: ",").reversed() {
            let address = String(entry.trimmingASCIISpaces())
            guard Self.bytes(of: address) != nil else { return nil }
            if !contains(address) { return address }
            leftmost = address
        }
        return leftmost
    }

    /// Whether `address` (an IP address as text; IPv4-mapped IPv6 counts as IPv4) is in a range.
    public func contains(_ address: String) -> Bool {
        guard !ranges.isEmpty, var bytes = Self.bytes(of: address) else { return false }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])
        }
        return ranges.contains { $0.network.count == bytes.count && Self.masked(bytes, $0.prefixLength) == $0.network }
    }

    private static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = max(0, min(8, length - index * 8))
            return bits == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
    }

    /// The address's bytes: 4 for IPv4 (`a.b.c.d`), 16 for IPv6 (with `::` and an IPv4 tail); nil for
    /// anything else (a zone suffix such as `%eth0` is not an address here).
    static func bytes(of text: String) -> [UInt8]? {
        if let v4 = ipv4(Substring(text)) { return v4 }
        return ipv6(Substring(text))
    }

    private static func ipv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func ipv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if index == fields.count - 1, field.contains("."), let v4 = ipv4(field) {
                    bytes += v4
                    continue
                }
                guard (1...4).contains(field.count), let value = UInt16(field, radix: 16) else { return nil }
                bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return bytes
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

public enum AddressRangeError: Error, Equatable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let entry): "not an IP address or CIDR range: \(entry)"
        }
    }
}

extension AddressRanges {
    /// Reads `listen.trustedProxies` (a list, or comma-separated).
    public static func readTrustedProxies(_ v: inout ConfigValidator) -> AddressRanges {
        let entries = v.stringList("listen.trustedProxies", default: [])
        do {
            return try AddressRanges(parsing: entries)
        } catch {
            v.report("listen.trustedProxies", value: entries.joined(separator: ","), expected: "IP addresses or CIDR ranges (\(error))")
            return AddressRanges()
        }
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmingASCIISpaces() -> Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return s
    }
}

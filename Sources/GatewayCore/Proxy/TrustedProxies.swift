#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The addresses (single IPs or CIDR ranges, IPv4 and IPv6) of proxies in front of a listener whose
/// `X-Forwarded-Proto` and `X-Forwarded-Host` are believed (`listen.trustedProxies`): a request from one
/// keeps the scheme and host its client used, instead of this hop's. From any other client those fields
/// are replaced, so a client cannot make them up. Empty (the default) trusts no one.
public struct TrustedProxies: Sendable, Equatable {
    struct Range: Sendable, Equatable {
        /// 4 or 16 bytes.
        var network: [UInt8]
        var prefixLength: Int
    }

    var ranges: [Range] = []

    public init() {}

    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or `v6/n` for each entry; nil names the bad one.
    public init(parsing entries: [String]) throws(TrustedProxiesError) {
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

    private static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

public enum TrustedProxiesError: Error, Equatable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let entry): "not an IP address or CIDR range: \(entry)"
        }
    }
}

extension TrustedProxies {
    /// Reads `listen.trustedProxies` (a list, or comma-separated).
    public static func read(_ v: inout ConfigValidator) -> TrustedProxies {
        let entries = v.stringList("listen.trustedProxies", default: [])
        do {
            return try TrustedProxies(parsing: entries)
        } catch {
            v.report("listen.trustedProxies", value: entries.joined(separator: ","), expected: "IP addresses or CIDR ranges (\(error))")
            return TrustedProxies()
        }
    }
}

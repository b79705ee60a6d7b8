import GatewayCore
import NIOHTTP1

/// What ``ConsistentHashPolicy`` hashes a request by (`hash.key`): the client's address (`ip`, the
/// original client behind trusted proxies), a request field (`header:<name>`) or a cookie
/// (`cookie:<name>`). A request without the field or cookie is hashed by its client's address.
enum HashKey: Sendable, Equatable, CustomStringConvertible {
    case clientIP
    case header(String)
    case cookie(String)

    /// `ip`, `header:<name>` or `cookie:<name>`; nil for anything else.
    init?(parsing text: String) {
        if text == "ip" {
            self = .clientIP
            return
        }
        for (prefix, make) in [("header:", HashKey.header), ("cookie:", HashKey.cookie)] where text.hasPrefix(prefix) {
            let name = String(text.dropFirst(prefix.count))
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: "=") })
            else { return nil }
            self = make(name)
            return
        }
        return nil
    }

    var description: String {
        switch self {
        case .clientIP: "ip"
        case .header(let name): "header:\(name)"
        case .cookie(let name): "cookie:\(name)"
        }
    }

    /// The request's key, hashed with ``StableHash``.
    func hash(_ request: ProxyRequest) -> UInt64 {
        StableHash.of(value(of: request) ?? request.remoteIP)
    }

    /// The key's value in `request`, nil when it has none (then the client's address is used).
    func value(of request: ProxyRequest) -> String? {
        switch self {
        case .clientIP:
            return request.remoteIP
        case .header(let name):
            return request.head.headers.first(name: name)
        case .cookie(let name):
            // Every Cookie field (HTTP/2 sends one per cookie), as sent: `a=1; b=2` (no splitting at commas,
            // which a cookie's value may hold).
            for field in request.head.headers["Cookie"] {
                for pair in field.split(separator: ";") {
                    let pair = pair.drop { $0 == " " }
                    guard let equals = pair.firstIndex(of: "="), pair[..<equals] == name else { continue }
                    return String(pair[pair.index(after: equals)...])
                }
            }
            return nil
        }
    }
}

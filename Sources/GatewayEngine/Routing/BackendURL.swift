import GatewayCore

/// A target's `http://host[:port][/base]` or `https://host[:port][/base]` URL, split into what the
/// proxy needs. An `https://` target is reached over TLS (HTTP/1.1), its certificate verified against
/// `backends.caFile` or the system's trust store, and its host name sent as SNI.
struct BackendURL: Sendable, Hashable, CustomStringConvertible {
    let host: String
    let port: Int
    let tls: Bool
    /// Path prefix prepended to forwarded paths; empty for none (never ends with `/`).
    let basePath: String
    /// `host:port`, IPv6 in brackets; the port left out when it is the scheme's (the `Host` header sent
    /// to the target, as clients write it).
    let authority: String
    /// The upstream target the proxy connects to, named by the URL (made once, not per request).
    let target: UpstreamTarget

    init(host: String, port: Int, basePath: String, tls: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
        self.basePath = basePath
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let authority = port == (tls ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
        self.authority = authority
        self.target = UpstreamTarget(id: "\(tls ? "https" : "http")://\(authority)\(basePath)", host: host, port: port, tls: tls)
    }

    /// Parses `text`, or returns nil with the reason in `problem`.
    static func parse(_ text: String) -> Result<BackendURL, Problem> {
        let tls = text.hasPrefix("https://")
        guard tls || text.hasPrefix("http://") else { return .failure(.notHTTP) }
        var rest = Substring(text.dropFirst(tls ? "https://".count : "http://".count))
        guard !rest.contains(where: { $0 == "?" || $0 == "#" || $0 == " " || $0 == "@" }) else {
            return .failure(.unsupportedPart)
        }
        var basePath = ""
        if let slash = rest.firstIndex(of: "/") {
            basePath = String(rest[slash...])
            rest = rest[..<slash]
            while basePath.hasSuffix("/") { basePath.removeLast() }
        }
        var host = String(rest)
        var port = tls ? 443 : 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return .failure(.badHost) }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    return .failure(.badPort)
                }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else { return .failure(.badPort) }
            port = p
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else {
            return .failure(.badHost)
        }
        return .success(BackendURL(host: host.lowercased(), port: port, basePath: basePath, tls: tls))
    }

    enum Problem: Error, Sendable, Hashable {
        case notHTTP, unsupportedPart, badHost, badPort

        var expected: String {
            switch self {
            case .notHTTP: return "an http:// or https:// URL"
            case .unsupportedPart: return "an http:// or https:// URL without user info, query or fragment"
            case .badHost: return "an http:// or https:// URL with a valid host"
            case .badPort: return "an http:// or https:// URL with a port in 1...65535"
            }
        }
    }

    var description: String { target.id }
}

import GatewayCore

/// A target's `http://host[:port][/base]` URL, split into what the proxy needs.
struct BackendURL: Sendable, Hashable, CustomStringConvertible {
    let host: String
    let port: Int
    /// Path prefix prepended to forwarded paths; empty for none (never ends with `/`).
    let basePath: String
    /// `host:port`, IPv6 in brackets (the `Host` header sent to the target).
    let authority: String
    /// The upstream target the proxy connects to, named by the URL (made once, not per request).
    let target: UpstreamTarget

    init(host: String, port: Int, basePath: String) {
        self.host = host
        self.port = port
        self.basePath = basePath
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.authority = authority
        self.target = UpstreamTarget(id: "http://\(authority)\(basePath)", host: host, port: port)
    }

    /// Parses `text`, or returns nil with the reason in `problem`.
    static func parse(_ text: String) -> Result<BackendURL, Problem> {
        guard text.hasPrefix("http://") else { return .failure(.notHTTP) }
        var rest = Substring(text.dropFirst("http://".count))
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
        var port = 80
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
        return .success(BackendURL(host: host.lowercased(), port: port, basePath: basePath))
    }

    enum Problem: Error, Sendable, Hashable {
        case notHTTP, unsupportedPart, badHost, badPort

        var expected: String {
            switch self {
            case .notHTTP: return "an http:// URL"
            case .unsupportedPart: return "an http:// URL without user info, query or fragment"
            case .badHost: return "an http:// URL with a valid host"
            case .badPort: return "an http:// URL with a port in 1...65535"
            }
        }
    }

    var description: String { target.id }
}

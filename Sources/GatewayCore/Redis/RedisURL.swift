import Foundation

/// A parsed `redis://[user:password@]host:port[/db]` URL; `rediss://` is the same over TLS
/// (``RedisConfiguration/tls`` says what to trust).
///
/// The password never appears in ``description``: logs and errors show `redis://user:***@host:port/db`.
public struct RedisURL: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int
    /// Whether the connection is TLS (`rediss://`).
    public var tls: Bool

    public init(host: String, port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0, tls: Bool = false) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Parses a URL of the form `redis://[[user]:password@]host[:port][/db]` or `rediss://…` (TLS).
    public init(parsing string: String) throws(RedisError) {
        let tls = string.hasPrefix("rediss://")
        guard tls || string.hasPrefix("redis://") else {
            throw .invalidURL("expected redis://[user:password@]host:port[/db] (rediss:// for TLS), got \(Self.redacted(string))")
        }
        var rest = Substring(string.dropFirst(tls ? "rediss://".count : "redis://".count))
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let u = credentials[..<colon]
                user = u.isEmpty ? nil : Self.percentDecoded(u)
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                // `redis://secret@host` is the common password-only form.
                password = Self.percentDecoded(credentials)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0 else {
                    throw .invalidURL("database must be a non-negative integer, got \"\(dbText)\"")
                }
                database = db
            }
        }
        var host = String(rest)
        var port = 6379
        if rest.hasPrefix("[") {  // IPv6 literal
            guard let close = rest.firstIndex(of: "]") else { throw .invalidURL("unterminated IPv6 address") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    throw .invalidURL("port must be 1-65535, got \"\(after.dropFirst())\"")
                }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            let portText = rest[rest.index(after: colon)...]
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw .invalidURL("port must be 1-65535, got \"\(portText)\"")
            }
            port = p
        }
        guard !host.isEmpty else { throw .invalidURL("missing host") }
        self.init(host: host, port: port, user: user, password: password, database: database, tls: tls)
    }

    private static func percentDecoded(_ s: Substring) -> String {
        guard s.contains("%") else { return String(s) }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%"), it.count >= 2,
                let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The URL text with any password replaced by `***`, safe to log.
    public static func redacted(_ url: String) -> String {
        // Without a scheme (a common mistake) the credentials start the text: they must be masked too.
        let credentialsStart = url.range(of: "://")?.upperBound ?? url.startIndex
        guard let at = url.range(of: "@", options: .backwards), at.lowerBound > credentialsStart else { return url }
        let credentials = url[credentialsStart..<at.lowerBound]
        let user = credentials.firstIndex(of: ":").map { credentials[..<$0] } ?? ""
        return String(url[..<credentialsStart]) + String(user) + ":***" + String(url[at.lowerBound...])
    }

    /// `host:port`, for messages.
    public var address: String {
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension RedisURL: CustomStringConvertible {
    public var description: String {
        var s = tls ? "rediss://" : "redis://"
        if user != nil || password != nil {
            s += (user ?? "") + (password != nil ? ":***" : "") + "@"
        }
        return s + address + "/\(database)"
    }
}

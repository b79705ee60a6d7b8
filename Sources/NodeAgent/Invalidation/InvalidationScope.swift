import GatewayCore

/// What one cluster-wide cache invalidation covers: the whole cache, one API, a path prefix (optionally
/// within one API), or one cache key.
///
/// In the stream (`<prefix>:invalidations`) an entry holds the field `scope` (`all`, `api`, `prefix`,
/// `key`) and, as the scope needs, `api`, `prefix` and `key`. The engine's purge endpoint takes the same
/// names as JSON.
public enum InvalidationScope: Sendable, Hashable, CustomStringConvertible {
    case all
    case api(String)
    case prefix(String, api: String? = nil)
    case key(String)

    /// The entry's fields for `XADD`.
    public var streamFields: [(String, String)] {
        switch self {
        case .all: return [("scope", "all")]
        case .api(let api): return [("scope", "api"), ("api", api)]
        case .prefix(let prefix, let api):
            return [("scope", "prefix"), ("prefix", prefix)] + (api.map { [("api", $0)] } ?? [])
        case .key(let key): return [("scope", "key"), ("key", key)]
        }
    }

    /// Reads a stream entry; nil when its fields do not make a valid scope.
    public init?(entry: RedisStreamEntry) {
        func value(_ name: String) -> String? {
            guard let v = entry[name], !v.isEmpty else { return nil }
            return v
        }
        switch entry["scope"] {
        case "all": self = .all
        case "api":
            guard let api = value("api") else { return nil }
            self = .api(api)
        case "prefix":
            guard let prefix = value("prefix"), prefix.hasPrefix("/") else { return nil }
            self = .prefix(prefix, api: value("api"))
        case "key":
            guard let key = value("key") else { return nil }
            self = .key(key)
        default:
            return nil
        }
    }

    /// The body of `POST /cache/purge`.
    public var purgeRequestJSON: String {
        let q = StructuredLogHandler.jsonString
        switch self {
        case .all: return #"{"scope":"all"}"#
        case .api(let api): return #"{"scope":"api","api":\#(q(api))}"#
        case .prefix(let prefix, let api):
            return #"{"scope":"prefix","prefix":\#(q(prefix))"# + (api.map { #","api":\#(q($0))"# } ?? "") + "}"
        case .key(let key): return #"{"scope":"key","key":\#(q(key))}"#
        }
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .api(let api): return "api \(api)"
        case .prefix(let prefix, let api): return "prefix \(prefix)" + (api.map { " of api \($0)" } ?? "")
        case .key(let key): return "key \(key)"
        }
    }
}

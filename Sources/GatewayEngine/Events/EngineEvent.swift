import Foundation

/// A message on the cluster's events channel that the engine acts on.
///
/// Messages are JSON objects with a `type`, in the format of `ClusterEvent` (GatewayCore):
/// `{"type":"apis_changed","version":12}`, `{"type":"key_revoked","hash":"<sha256 hex>"}`. The engine
/// adds `key_created` and `key_updated`, and accepts a `key_id` (a hash prefix) where a `hash` is expected. Types the
/// engine does not act on (node and weight events) decode as ``other(type:)``.
enum EngineEvent: Sendable, Hashable {
    /// The API definitions changed; `version` is the store's new version counter.
    case apisChanged(version: Int64)
    /// An API key was revoked; engines drop it from their caches. Carries the key's SHA-256 hex, or a
    /// prefix of it (the key id).
    case keyRevoked(hashPrefix: String)
    /// An API key was created; engines drop any cached "unknown key" answer for it.
    case keyCreated(hashPrefix: String)
    /// An API key's policy changed; engines drop their cached record of it.
    case keyUpdated(hashPrefix: String)
    /// The subscription was (re)established: messages may have been missed, so reread state.
    case resync
    case other(type: String)

    /// Decodes a channel message; nil for anything that is not a JSON object with a string `type`.
    init?(message: String) {
        guard case .object(let fields)? = try? JSONValue.parse(Array(message.utf8)),
            case .string(let type)? = fields["type"]
        else { return nil }
        switch type {
        case "apis_changed":
            guard case .number(let version)? = fields["version"] else { return nil }
            self = .apisChanged(version: Int64(version))
        case "key_revoked", "key_created", "key_updated":
            let prefix: String
            if case .string(let hash)? = fields["hash"] {
                prefix = hash
            } else if case .string(let id)? = fields["key_id"] {
                prefix = id
            } else {
                return nil
            }
            // An empty prefix would match every key.
            guard !prefix.isEmpty else { return nil }
            switch type {
            case "key_revoked": self = .keyRevoked(hashPrefix: prefix)
            case "key_created": self = .keyCreated(hashPrefix: prefix)
            default: self = .keyUpdated(hashPrefix: prefix)
            }
        default:
            self = .other(type: type)
        }
    }

    /// The JSON text published for this event.
    var message: String {
        switch self {
        case .apisChanged(let version): return #"{"type":"apis_changed","version":\#(version)}"#
        case .keyRevoked(let hash): return #"{"type":"key_revoked","hash":\#(Self.quoted(hash))}"#
        case .keyCreated(let hash): return #"{"type":"key_created","hash":\#(Self.quoted(hash))}"#
        case .keyUpdated(let hash): return #"{"type":"key_updated","hash":\#(Self.quoted(hash))}"#
        case .resync: return #"{"type":"resync"}"#
        case .other(let type): return #"{"type":\#(Self.quoted(type))}"#
        }
    }

    private static func quoted(_ s: String) -> String {
        let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

import Foundation

/// A message on the cluster's events channel that the engine acts on.
///
/// Messages are JSON objects with a `type`: `{"type":"apis_changed","version":12,"id":"orders"}`,
/// `{"type":"key_revoked","key_id":"3f2a9c01b7e4"}`. Types the engine does not use (node and weight
/// events) decode as ``other(type:)``.
enum EngineEvent: Sendable, Hashable {
    /// The API definitions changed; `version` is the store's new version counter.
    case apisChanged(version: Int64)
    /// An API key was revoked; engines drop it from their caches.
    case keyRevoked(keyID: String)
    /// An API key was created; engines drop any cached "unknown key" answer for it.
    case keyCreated(keyID: String)
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
        case "key_revoked", "key_created":
            guard case .string(let id)? = fields["key_id"] else { return nil }
            self = type == "key_revoked" ? .keyRevoked(keyID: id) : .keyCreated(keyID: id)
        default:
            self = .other(type: type)
        }
    }

    /// The JSON text published for this event.
    var message: String {
        switch self {
        case .apisChanged(let version): return #"{"type":"apis_changed","version":\#(version)}"#
        case .keyRevoked(let id): return #"{"type":"key_revoked","key_id":\#(Self.quoted(id))}"#
        case .keyCreated(let id): return #"{"type":"key_created","key_id":\#(Self.quoted(id))}"#
        case .resync: return #"{"type":"resync"}"#
        case .other(let type): return #"{"type":\#(Self.quoted(type))}"#
        }
    }

    private static func quoted(_ s: String) -> String {
        let data = (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

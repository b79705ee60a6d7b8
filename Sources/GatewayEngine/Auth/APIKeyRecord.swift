import Foundation
import GatewayCore

/// What an API key allows, stored as JSON at `<prefix>:key:<sha256 of the key>`.
///
/// ```json
/// {"id":"3f2a9c01b7e4","name":"mobile app","created_at":"2025-01-01T00:00:00Z","expires_at":null,
///  "allowed_apis":["orders"],"rate_limit":{"rate":10,"period_seconds":1,"burst":20},"quota":null}
/// ```
struct APIKeyRecord: Sendable, Hashable, Codable {
    /// The first 12 hex digits of the key's SHA-256: safe to show, log and revoke by.
    var id: String
    var name: String
    var createdAt: Date
    /// Nil for a key that does not expire.
    var expiresAt: Date?
    /// API ids the key may call; empty allows every API that takes API keys.
    var allowedAPIs: [String]
    /// The key's own rate limit; nil uses the API's.
    var rateLimit: RateLimitPolicy?
    /// The key's own quota; nil uses the API's.
    var quota: QuotaPolicy?

    init(
        id: String, name: String, createdAt: Date, expiresAt: Date? = nil, allowedAPIs: [String] = [],
        rateLimit: RateLimitPolicy? = nil, quota: QuotaPolicy? = nil
    ) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.allowedAPIs = allowedAPIs
        self.rateLimit = rateLimit
        self.quota = quota
    }

    /// Whether the key may call the API (403 otherwise).
    func permits(api: String) -> Bool {
        allowedAPIs.isEmpty || allowedAPIs.contains(api)
    }

    func isExpired(at now: Date) -> Bool {
        expiresAt.map { $0 <= now } ?? false
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case allowedAPIs = "allowed_apis"
        case rateLimit = "rate_limit"
        case quota
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}

/// What ``APIKeyStore/create(_:)`` needs to make a key.
struct APIKeyRequest: Sendable, Hashable {
    var name: String
    var expiresAt: Date?
    var allowedAPIs: [String] = []
    var rateLimit: RateLimitPolicy?
    var quota: QuotaPolicy?
    /// A key clients already hold (from another gateway), stored like a generated one; nil generates one.
    var importedKey: String?

    init(
        name: String, expiresAt: Date? = nil, allowedAPIs: [String] = [], rateLimit: RateLimitPolicy? = nil,
        quota: QuotaPolicy? = nil, importedKey: String? = nil
    ) {
        self.name = name
        self.expiresAt = expiresAt
        self.allowedAPIs = allowedAPIs
        self.rateLimit = rateLimit
        self.quota = quota
        self.importedKey = importedKey
    }
}

/// What ``APIKeyStore/update(id:_:)`` changes: each field that is set (`.some(nil)` clears an expiry,
/// a rate limit or a quota: no expiry, the API's own limit).
struct APIKeyPatch: Sendable, Hashable {
    var name: String?
    var expiresAt: Date??
    var allowedAPIs: [String]?
    var rateLimit: RateLimitPolicy??
    var quota: QuotaPolicy??
}

/// The result of looking up a presented key.
enum APIKeyLookup: Sendable, Hashable {
    case valid(APIKeyRecord)
    /// No such key: never created, revoked, or malformed. (401)
    case unknown
    /// The key exists but its expiry has passed. (401)
    case expired(APIKeyRecord)
}

/// Why a lookup could not answer. Never a reason to refuse the client with 401/403: the HTTP layer
/// answers 503.
enum APIKeyLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Redis could not be reached or failed the command.
    case unavailable(RedisError)
    /// The stored record is not valid JSON for a key policy.
    case corruptRecord(keyID: String)

    var description: String {
        switch self {
        case .unavailable(let error): return "api key store unavailable: \(error)"
        case .corruptRecord(let id): return "api key \(id) has an unreadable record"
        }
    }
}

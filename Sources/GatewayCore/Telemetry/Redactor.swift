/// Keeps secrets out of logs and error messages.
public enum Redactor {
    private static let secretWords = [
        "token", "password", "passwd", "secret", "authorization", "apikey", "api_key", "api-key", "cookie", "credential",
    ]

    /// Whether a configuration or metadata key names a secret (`admin.token`, `jwt.secret`, `x-api-key`).
    public static func isSecretKey(_ key: String) -> Bool {
        let k = key.lowercased()
        if k.hasSuffix("tokenfile") || k.hasSuffix("token_file") || k.hasSuffix("secretfile") { return false }
        return secretWords.contains { k.contains($0) }
    }

    /// The value with any password inside a URL (`scheme://user:pass@host`) replaced by `***`.
    public static func redactURLs(_ text: String) -> String {
        guard text.contains("://"), text.contains("@") else { return text }
        // Redact each whitespace-separated word that carries credentials.
        return text.split(separator: " ", omittingEmptySubsequences: false).map { word in
            word.contains("://") && word.contains("@") ? RedisURL.redacted(String(word)) : String(word)
        }.joined(separator: " ")
    }

    /// What a log line may show for a metadata value under `key`.
    public static func redact(key: String, value: String) -> String {
        isSecretKey(key) ? "***" : redactURLs(value)
    }
}

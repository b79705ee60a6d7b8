/// Request ids: kept from the client's `X-Request-ID` when it is sane, generated otherwise.
public enum RequestID {
    public static let headerName = "X-Request-ID"

    /// A fresh id: 16 random bytes as 32 hex characters.
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        let a = rng.next() as UInt64
        let b = rng.next() as UInt64
        return withUnsafeBytes(of: (a, b)) { $0.hexString }
    }

    /// The client's id if it is 1–128 visible ASCII characters, else a new one.
    public static func accept(_ candidate: String?) -> String {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= 128,
            candidate.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { return generate() }
        return candidate
    }
}

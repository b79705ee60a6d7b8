import Synchronization

/// Request ids: kept from the client's `X-Request-ID` when it is sane, generated otherwise.
public enum RequestID {
    public static let headerName = "X-Request-ID"

    /// A fresh id, 32 hex characters: a random per-process prefix and a counter, unique without a
    /// system call per request (drawing random bytes for each id cost two `getrandom` calls).
    public static func generate() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return withUnsafeBytes(of: (processPrefix, n.bigEndian)) { $0.hexString }
    }

    private static let processPrefix: UInt64 = {
        var rng = SystemRandomNumberGenerator()
        return rng.next()
    }()

    private static let counter = Atomic<UInt64>({
        var rng = SystemRandomNumberGenerator()
        return rng.next() >> 16
    }())

    /// The client's id if it is 1–128 visible ASCII characters, else a new one.
    public static func accept(_ candidate: String?) -> String {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= 128,
            candidate.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { return generate() }
        return candidate
    }
}

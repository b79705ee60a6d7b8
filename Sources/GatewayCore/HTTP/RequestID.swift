import Synchronization

/// Request ids: kept from the client's `X-Request-ID` when it is sane, generated otherwise.
public enum RequestID {
    public static let headerName = "X-Request-ID"

    /// Characters of a generated id: 15, the most a Swift string holds inline, so an id is made without
    /// an allocation and copied without reference counting, and costs 15 bytes on the wire (and 15
    /// characters of HPACK's Huffman coding on an HTTP/2 response).
    public static let generatedLength = 15

    /// The 64 characters of a generated id, in ASCII order, so ids of one process sort in the order
    /// they were made: `-`, digits, upper case, `_`, lower case (URL- and header-safe).
    static let alphabet: [UInt8] = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz".utf8)

    /// A fresh id: 7 characters (42 bits) drawn at random once per process, then 8 characters (48 bits)
    /// of a counter that starts at a random value. Unique without a system call per request (drawing
    /// random bytes for each id cost two `getrandom` calls); two processes share ids only if they drew
    /// the same 42-bit prefix and their counters overlap.
    public static func generate() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: generatedLength) { out in
            alphabet.withUnsafeBufferPointer { digits in
                var prefix = processPrefix
                for i in stride(from: 6, through: 0, by: -1) {
                    out[i] = digits[Int(truncatingIfNeeded: prefix & 63)]
                    prefix >>= 6
                }
                var count = n
                for i in stride(from: generatedLength - 1, through: 7, by: -1) {
                    out[i] = digits[Int(truncatingIfNeeded: count & 63)]
                    count >>= 6
                }
            }
            return generatedLength
        }
    }

    private static let processPrefix: UInt64 = {
        var rng = SystemRandomNumberGenerator()
        return rng.next() >> 22
    }()

    /// 48 bits, from a random start (a wrap after 2^48 ids would only repeat this process's own
    /// oldest ids).
    private static let counter = Atomic<UInt64>(
        {
            var rng = SystemRandomNumberGenerator()
            return rng.next() >> 17
        }())

    /// The client's id if it is 1–128 visible ASCII characters, else a new one.
    public static func accept(_ candidate: String?) -> String {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= 128,
            candidate.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { return generate() }
        return candidate
    }
}

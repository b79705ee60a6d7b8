import NIOCore

/// Redis Cluster's key space: 16,384 hash slots, a key's slot being CRC16 (XMODEM) of the key — or of
/// its hash tag, the text between the first `{` and the next `}` when that is not empty — modulo 16,384.
/// Keys that share a hash tag share a slot, which is how one script or transaction may touch several.
public enum RedisClusterSlot {
    public static let count = 16_384

    /// The slot of `key`.
    public static func of(key: String) -> Int {
        var key = key
        return key.withUTF8 { of(keyBytes: UnsafeRawBufferPointer($0)) }
    }

    /// The slot of a key given as its bytes.
    public static func of(keyBytes key: UnsafeRawBufferPointer) -> Int {
        var hashed = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = key[(open + 1)..<close]
        }
        var crc: UInt16 = 0
        for byte in hashed {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return Int(crc) & (count - 1)
    }

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), a byte at a time.
    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}

extension RedisCommand {
    /// The slot of the command's first key, or nil for a command that names no key (`PING`, `PUBLISH`,
    /// `SCRIPT LOAD`, an `EVALSHA` with no keys...), which any node of a cluster may serve.
    ///
    /// Where the first key sits is known for the commands this project sends and for Redis's usual
    /// key-first commands; it is read from the encoded command, so a standalone client pays nothing for it.
    public var clusterSlot: Int? {
        guard let position = keyPosition else { return nil }
        return argumentBytes(at: position) { key in key.map { RedisClusterSlot.of(keyBytes: $0) } }
    }

    /// The index (0 is the command's name) of the first key, if the command has one.
    private var keyPosition: Int? {
        let upper = name.utf8.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) ? name.uppercased() : name
        if Self.keyless.contains(upper) { return nil }
        switch upper {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            let keys = argumentBytes(at: 2) { bytes in bytes.flatMap { Int(String(decoding: $0, as: UTF8.self)) } } ?? 0
            return keys > 0 ? 3 : nil
        case "XREAD", "XREADGROUP":
            var i = 1
            while let word = argumentBytes(at: i, { $0.map { String(decoding: $0, as: UTF8.self).uppercased() } }) {
                if word == "STREAMS" { return i + 1 }
                i += 1
            }
            return nil
        case "XINFO", "XGROUP", "OBJECT", "MEMORY":
            return 2
        default:
            return 1
        }
    }

    private static let keyless: Set<String> = [
        "PING", "ECHO", "PUBLISH", "SPUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SCRIPT",
        "FUNCTION", "MULTI", "EXEC", "DISCARD", "ASKING", "CLUSTER", "CLIENT", "INFO", "TIME", "COMMAND", "DBSIZE",
        "FLUSHALL", "FLUSHDB", "CONFIG", "AUTH", "HELLO", "SELECT", "READONLY", "READWRITE", "WAIT", "RANDOMKEY",
        "SCAN", "KEYS", "UNWATCH", "QUIT", "RESET", "DEBUG", "ROLE", "LASTSAVE", "SAVE", "BGSAVE", "SLOWLOG", "LATENCY",
        "MONITOR", "SHUTDOWN", "SWAPDB", "ACL",
    ]

    /// Calls `body` with the bytes of argument `index` of the encoded command (`*N`, then `$len` and the
    /// bytes for each part), or with nil when there is no such argument.
    private func argumentBytes<T>(at index: Int, _ body: (UnsafeRawBufferPointer?) -> T) -> T {
        encoded.withUnsafeReadableBytes { bytes in
            var i = 0
            func line() -> Int? {  // reads "<digits>\r\n" after a type byte, returns the number
                guard i < bytes.count else { return nil }
                i += 1
                var value = 0
                while i < bytes.count, bytes[i] != UInt8(ascii: "\r") {
                    let digit = Int(bytes[i]) - 48
                    guard digit >= 0, digit <= 9 else { return nil }
                    value = value * 10 + digit
                    i += 1
                }
                i += 2
                return value
            }
            guard let parts = line(), index < parts else { return body(nil) }
            for part in 0...index {
                guard let length = line(), i + length <= bytes.count else { return body(nil) }
                if part == index { return body(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + length)])) }
                i += length + 2
            }
            return body(nil)
        }
    }
}

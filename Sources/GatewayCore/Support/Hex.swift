extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal text of the bytes, written straight into the string's storage.
    public var hexString: String {
        // Contiguous bytes (the usual case: a buffer, an array, a digest) are read in place; anything
        // else is copied into an array first.
        if let text = withContiguousStorageIfAvailable({ Self.hex($0) }) { return text }
        return Array(self).withUnsafeBufferPointer { Self.hex($0) }
    }

    private static func hex(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (i, byte) in bytes.enumerated() {
                out[2 * i] = hexDigit(byte >> 4)
                out[2 * i + 1] = hexDigit(byte & 0x0f)
            }
            return bytes.count * 2
        }
    }
}

@inline(__always)
private func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}

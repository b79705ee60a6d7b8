extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal text of the bytes, written straight into the string's storage.
    public var hexString: String {
        let bytes = Array(self)
        return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
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

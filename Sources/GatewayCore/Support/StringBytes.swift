#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension UnsafeBufferPointer<UInt8> {
    /// The index of the first `byte` in `self[range]`, found with memchr (vectorized).
    @inline(__always)
    func firstIndex(of byte: UInt8, in range: Range<Int>) -> Int? {
        guard !range.isEmpty, let base = baseAddress, let found = memchr(base + range.lowerBound, Int32(byte), range.count) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(base)
    }
}

extension String {
    /// The index of the first `byte` in the UTF-8 view, found with memchr over the contiguous bytes (the
    /// generic `utf8.firstIndex(of:)` steps through the view's indices one at a time).
    public func firstUTF8Index(of byte: UInt8) -> String.Index? {
        if let offset = utf8.withContiguousStorageIfAvailable({ $0.firstIndex(of: byte, in: 0..<$0.count) }) {
            return offset.map { utf8.index(utf8.startIndex, offsetBy: $0) }
        }
        return utf8.firstIndex(of: byte)
    }

    /// Whether every byte of the UTF-8 view passes `test`, read in place (a native string's bytes are
    /// contiguous, small or not); through the view's iterator only for a string that has none.
    @inline(__always)
    func allUTF8(_ test: (UInt8) -> Bool) -> Bool {
        if let inPlace = utf8.withContiguousStorageIfAvailable({ bytes in
            for byte in bytes where !test(byte) { return false }
            return true
        }) {
            return inPlace
        }
        return utf8.allSatisfy(test)
    }
}

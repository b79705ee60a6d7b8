#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
    /// The index of the first `byte` in the UTF-8 view, found with memchr over the contiguous bytes (the
    /// generic `utf8.firstIndex(of:)` steps through the view's indices one at a time).
    public func firstUTF8Index(of byte: UInt8) -> String.Index? {
        let offset: Int? = utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress, let found = memchr(base, Int32(byte), bytes.count) else { return nil }
            return UnsafeRawPointer(found) - UnsafeRawPointer(base)
        } ?? utf8.firstIndex(of: byte).map { utf8.distance(from: utf8.startIndex, to: $0) }
        return offset.map { utf8.index(utf8.startIndex, offsetBy: $0) }
    }
}

import NIOCore
import NIOHTTP1

/// Encodes response header blocks for ``HTTP2ServerCodec`` (RFC 7541), spending as little CPU as HPACK
/// allows: a `:status` in the static table is one byte; any other field is a literal *without indexing*
/// whose name is the static table's index where it has one, and whose value is written raw.
///
/// The encoder never inserts into the peer's dynamic table and never Huffman-codes, so it keeps no state
/// per connection and needs no dynamic table size update when the peer's `SETTINGS_HEADER_TABLE_SIZE`
/// changes. A response block is larger than a fully compressed one (about 110 bytes for a typical proxied
/// response instead of about 40), which on the links a balancer serves is a smaller cost than the CPU a
/// table search and Huffman coding take on every response.
enum HPACKFieldEncoder {
    /// Appends a HEADERS frame (END_HEADERS set) carrying a response's header block: `:status`, the
    /// head's fields but those `extras` replace, then the request id, the length and the other fields
    /// `extras` adds. Names are lower-cased as they are written (HTTP/2 field names are lower case;
    /// HTTP/1.1 backends send them in any case). The whole frame is written in one pass over raw memory
    /// (its largest size is known up front). Returns the block's length: when it is larger than the
    /// client's frame size, the caller splits the frame.
    @discardableResult
    static func writeHeadersFrame(
        _ head: ProxyResponseHead, extras: ResponseHeadExtras, stream: UInt32, endStream: Bool, into buffer: inout ByteBuffer
    ) -> Int {
        // At most: a frame header, :status, and per field 1 + 5 bytes of name index or length, the
        // name, 5 bytes of value length and the value.
        var size = 9 + 5 + 11 + 12 + extras.requestID.utf8.count + 11 + 20
        switch head.fields {
        case .headers(let headers):
            for (name, value) in headers { size += name.utf8.count + value.utf8.count + 11 }
        case .wire(let wire):
            // A line is at least three bytes ("a:" and LF).
            size += wire.lines.readableBytes + 11 * min(HTTP1WireFields.maxLines, wire.lines.readableBytes / 3 + 1)
        }
        for (name, value) in extras.fields { size += name.utf8.count + value.utf8.count + 11 }
        var blockLength = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var w = RawWriter(out)
            for _ in 0..<9 { w.put(0) }
            putStatus(head.status.code, into: &w)
            switch head.fields {
            case .headers(let headers):
                for (name, value) in headers where !extras.replaces(name) {
                    putField(name, value, into: &w)
                }
            case .wire(let wire):
                wire.forEachLine { line, nameLength in
                    let name = UnsafeRawBufferPointer(rebasing: line[0..<nameLength])
                    if !extras.replaces(nameBytes: name) { putField(line: line.bindMemory(to: UInt8.self), nameLength: nameLength, into: &w) }
                }
            }
            w.put(0)  // x-request-id: a literal name (not in the static table)
            w.putHPACKString("x-request-id")
            w.putHPACKString(extras.requestID)
            if let length = extras.contentLength {
                w.putHPACKInteger(28, prefixBits: 4, flags: 0)  // content-length
                w.putHPACKDecimal(length)
            }
            for (name, value) in extras.fields {
                putField(name, value, into: &w)
            }
            blockLength = w.count - 9
            w.setFrameHeader(length: blockLength, type: 0x1, flags: (endStream ? 0x1 : 0) | 0x4, stream: stream)
            return w.count
        }
        return blockLength
    }

    /// `:status`: one byte for the codes in the static table, else a literal with its name indexed.
    static func putStatus(_ code: UInt, into w: inout RawWriter) {
        if let index = statusIndex(code) {
            w.put(0x80 | index)
            return
        }
        w.put(0x08)  // literal without indexing, name :status (index 8)
        w.putHPACKDecimal(Int(min(code, 999)))
    }

    /// One field, its name lower-cased. `set-cookie` goes as "never indexed", so that intermediaries do
    /// not index it either (RFC 7541 §7.1.3).
    static func putField(_ name: String, _ value: String, into w: inout RawWriter) {
        putName(index: staticNameIndex(name), length: name.utf8.count, into: &w) { w in
            if name.allUTF8({ $0 < UInt8(ascii: "A") || $0 > UInt8(ascii: "Z") }) {
                w.putString(name)
            } else {
                for byte in name.utf8 { w.put(lowercased(byte)) }
            }
        }
        w.putHPACKString(value)
    }

    /// One field from a wire line (``HTTP1WireFields``), as ``putField(_:_:into:)`` writes it.
    static func putField(line: UnsafeBufferPointer<UInt8>, nameLength: Int, into w: inout RawWriter) {
        let name = UnsafeBufferPointer(rebasing: line[0..<nameLength])
        putName(index: staticNameIndex(name), length: nameLength, into: &w) { w in
            for byte in name { w.put(lowercased(byte)) }
        }
        let value = HTTP1WireFields.valueRange(line, nameLength: nameLength)
        w.putHPACKInteger(value.count, prefixBits: 7, flags: 0)
        w.put(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(line)[value]))
    }

    /// A field's name: its index in the static table, or else a literal that `literal` writes.
    @inline(__always)
    private static func putName(index: Int?, length: Int, into w: inout RawWriter, literal: (inout RawWriter) -> Void) {
        let flags: UInt8 = index == 55 ? 0x10 : 0x00
        if let index {
            w.putHPACKInteger(index, prefixBits: 4, flags: flags)
            return
        }
        w.put(flags)
        w.putHPACKInteger(length, prefixBits: 7, flags: 0)
        literal(&w)
    }

    @inline(__always)
    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// The static table entry that holds both `:status` and this code.
    static func statusIndex(_ code: UInt) -> UInt8? {
        switch code {
        case 200: return 8
        case 204: return 9
        case 206: return 10
        case 304: return 11
        case 400: return 12
        case 404: return 13
        case 500: return 14
        default: return nil
        }
    }

    /// The index of `name` (in any letter case) in HPACK's static table (RFC 7541 Appendix A), for the
    /// names a response carries; chosen by length before any comparison.
    static func staticNameIndex(_ name: String) -> Int? {
        staticNameIndex(length: name.utf8.count) { HopByHop.equalsIgnoringASCIICase(name, $0) }
    }

    /// ``staticNameIndex(_:)`` for a name of a wire line (checked by the parser: no control characters).
    static func staticNameIndex(_ name: UnsafeBufferPointer<UInt8>) -> Int? {
        staticNameIndex(length: name.count) { HTTP1Parser.equalsLowercased(name, 0..<name.count, $0) }
    }

    @inline(__always)
    private static func staticNameIndex(length: Int, _ equals: (StaticString) -> Bool) -> Int? {
        func named(_ candidate: StaticString, _ index: Int) -> Int? {
            equals(candidate) ? index : nil
        }
        switch length {
        case 3:
            return named("age", 21) ?? named("via", 60)
        case 4:
            return named("date", 33) ?? named("etag", 34) ?? named("vary", 59) ?? named("link", 45)
        case 5: return named("allow", 22)
        case 6: return named("server", 54)
        case 7:
            return named("expires", 36) ?? named("refresh", 52)
        case 8: return named("location", 46)
        case 10: return named("set-cookie", 55)
        case 11: return named("retry-after", 53)
        case 12: return named("content-type", 31)
        case 13:
            return named("cache-control", 24) ?? named("last-modified", 44) ?? named("accept-ranges", 18) ?? named("content-range", 30)
        case 14: return named("content-length", 28)
        case 16:
            return named("content-encoding", 26) ?? named("content-language", 27) ?? named("content-location", 29) ?? named("www-authenticate", 61)
        case 17: return named("transfer-encoding", 57)
        case 18: return named("proxy-authenticate", 48)
        case 19: return named("content-disposition", 25)
        case 25: return named("strict-transport-security", 56)
        case 27: return named("access-control-allow-origin", 20)
        default: return nil
        }
    }
}

extension RawWriter {
    /// An integer with an N-bit prefix (RFC 7541 §5.1); `flags` fills the bits above the prefix.
    @inline(__always)
    mutating func putHPACKInteger(_ value: Int, prefixBits: Int, flags: UInt8) {
        let limit = (1 << prefixBits) - 1
        if value < limit {
            put(flags | UInt8(value))
            return
        }
        put(flags | UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            put(UInt8(rest & 0x7f | 0x80))
            rest >>= 7
        }
        put(UInt8(rest))
    }

    /// A string literal: its length (H bit clear: not Huffman-coded), then its bytes.
    @inline(__always)
    mutating func putHPACKString(_ string: String) {
        putHPACKInteger(string.utf8.count, prefixBits: 7, flags: 0)
        putString(string)
    }

    /// A number as a string literal of its decimal digits.
    mutating func putHPACKDecimal(_ value: Int) {
        var digits = 1
        var v = value
        while v >= 10 {
            v /= 10
            digits += 1
        }
        put(UInt8(digits))
        putDecimal(value)
    }

    /// Fills in the 9-byte HTTP/2 frame header written as zeros at the start.
    mutating func setFrameHeader(length: Int, type: UInt8, flags: UInt8, stream: UInt32) {
        let end = count
        count = 0
        put(UInt8(truncatingIfNeeded: length >> 16))
        put(UInt8(truncatingIfNeeded: length >> 8))
        put(UInt8(truncatingIfNeeded: length))
        put(type)
        put(flags)
        put(UInt8(truncatingIfNeeded: stream >> 24))
        put(UInt8(truncatingIfNeeded: stream >> 16))
        put(UInt8(truncatingIfNeeded: stream >> 8))
        put(UInt8(truncatingIfNeeded: stream))
        count = end
    }
}

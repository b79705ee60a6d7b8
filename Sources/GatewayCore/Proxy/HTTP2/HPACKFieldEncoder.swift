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
    /// Appends the header block of a response: `:status`, the head's fields but those `extras` replace,
    /// then the request id, the length and the other fields `extras` adds. Names are lower-cased as they
    /// are written (HTTP/2 field names are lower case; HTTP/1.1 backends send them in any case).
    static func encodeResponse(_ head: HTTPResponseHead, extras: ResponseHeadExtras, into buffer: inout ByteBuffer) {
        writeStatus(head.status.code, into: &buffer)
        for (name, value) in head.headers where !extras.replaces(name) {
            writeField(name, value, into: &buffer)
        }
        buffer.writeInteger(UInt8(0))  // x-request-id: a literal name (not in the static table)
        writeString("x-request-id", into: &buffer)
        writeString(extras.requestID, into: &buffer)
        if let length = extras.contentLength {
            writeInteger(28, prefixBits: 4, flags: 0, into: &buffer)  // content-length
            writeString(String(length), into: &buffer)
        }
        for (name, value) in extras.fields {
            writeField(name, value, into: &buffer)
        }
    }

    /// `:status`: one byte for the codes in the static table, else a literal with its name indexed.
    static func writeStatus(_ code: UInt, into buffer: inout ByteBuffer) {
        if let index = statusIndex(code) {
            buffer.writeInteger(0x80 | index)
            return
        }
        let code = min(code, 999)
        buffer.writeInteger(UInt8(0x08))  // literal without indexing, name :status (index 8)
        buffer.writeInteger(UInt8(3))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 100))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10))
        buffer.writeInteger(UInt8(ascii: "0") + UInt8(code % 10))
    }

    /// One field, its name lower-cased. `set-cookie` goes as "never indexed", so that intermediaries do
    /// not index it either (RFC 7541 §7.1.3).
    static func writeField(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        let index = staticNameIndex(name)
        let flags: UInt8 = index == 55 ? 0x10 : 0x00
        if let index {
            writeInteger(index, prefixBits: 4, flags: flags, into: &buffer)
        } else {
            buffer.writeInteger(flags)
            writeLowercased(name, into: &buffer)
        }
        writeString(value, into: &buffer)
    }

    /// A name as a string literal, ASCII letters lower-cased.
    static func writeLowercased(_ name: String, into buffer: inout ByteBuffer) {
        writeInteger(name.utf8.count, prefixBits: 7, flags: 0, into: &buffer)
        if name.allUTF8({ $0 < UInt8(ascii: "A") || $0 > UInt8(ascii: "Z") }) {
            buffer.writeString(name)
            return
        }
        for byte in name.utf8 {
            buffer.writeInteger(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte)
        }
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

    /// A string literal: a 7-bit-prefix length (H bit clear: not Huffman-coded), then the bytes.
    static func writeString(_ string: String, into buffer: inout ByteBuffer) {
        writeInteger(string.utf8.count, prefixBits: 7, flags: 0, into: &buffer)
        buffer.writeString(string)
    }

    /// An integer with an N-bit prefix (RFC 7541 §5.1); `flags` fills the bits above the prefix.
    static func writeInteger(_ value: Int, prefixBits: Int, flags: UInt8, into buffer: inout ByteBuffer) {
        let limit = (1 << prefixBits) - 1
        if value < limit {
            buffer.writeInteger(flags | UInt8(value))
            return
        }
        buffer.writeInteger(flags | UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            buffer.writeInteger(UInt8(rest & 0x7f | 0x80))
            rest >>= 7
        }
        buffer.writeInteger(UInt8(rest))
    }

    /// The index of `name` (in any letter case) in HPACK's static table (RFC 7541 Appendix A), for the
    /// names a response carries; chosen by length before any comparison.
    static func staticNameIndex(_ name: String) -> Int? {
        func named(_ candidate: String, _ index: Int) -> Int? {
            HopByHop.equalsIgnoringASCIICase(name, candidate) ? index : nil
        }
        switch name.utf8.count {
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

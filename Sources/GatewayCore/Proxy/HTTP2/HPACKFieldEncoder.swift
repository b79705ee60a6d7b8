import NIOCore
import NIOHPACK

/// Encodes response header blocks for ``HTTP2ServerCodec`` (RFC 7541), spending as little CPU as HPACK
/// allows: a `:status` in the static table is one byte; any other field is a literal *without indexing*
/// whose name is the static table's index where it has one, and whose value is written raw.
///
/// The encoder never inserts into the peer's dynamic table and never Huffman-codes, so it keeps no state
/// per connection and needs no dynamic table size update when the peer's `SETTINGS_HEADER_TABLE_SIZE`
/// changes. A response block is larger than a fully compressed one (about 110 bytes for a typical proxied
/// response instead of about 40), which on the links a balancer serves is a smaller cost than the CPU a
/// table search and Huffman coding take on every response. Names must be lower case (the front makes
/// them so). A field marked `.neverIndexed` (`set-cookie`) is sent as "never indexed", so that
/// intermediaries do not index it either.
enum HPACKFieldEncoder {
    /// Appends the header block of `fields` to `buffer`.
    static func encode(_ fields: HPACKHeaders, into buffer: inout ByteBuffer) {
        for (name, value, indexing) in fields {
            if name.utf8.count == 7, name == ":status" {
                if let index = statusIndex(value) {
                    buffer.writeInteger(0x80 | index)
                } else {
                    buffer.writeInteger(UInt8(0x08))  // literal without indexing, name :status (index 8)
                    writeString(value, into: &buffer)
                }
                continue
            }
            let prefix: UInt8 = indexing == .neverIndexed ? 0x10 : 0x00
            if let index = staticNameIndex(name) {
                writeInteger(index, prefixBits: 4, flags: prefix, into: &buffer)
            } else {
                buffer.writeInteger(prefix)
                writeString(name, into: &buffer)
            }
            writeString(value, into: &buffer)
        }
    }

    /// The static table entry that holds both `:status` and this value.
    static func statusIndex(_ value: String) -> UInt8? {
        guard value.utf8.count == 3 else { return nil }
        switch value {
        case "200": return 8
        case "204": return 9
        case "206": return 10
        case "304": return 11
        case "400": return 12
        case "404": return 13
        case "500": return 14
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

    /// The index of `name` in HPACK's static table (RFC 7541 Appendix A), for the names a response
    /// carries; chosen by length before any comparison.
    static func staticNameIndex(_ name: String) -> Int? {
        switch name.utf8.count {
        case 3:
            if name == "age" { return 21 }
            return name == "via" ? 60 : nil
        case 4:
            switch name {
            case "date": return 33
            case "etag": return 34
            case "vary": return 59
            case "link": return 45
            default: return nil
            }
        case 5: return name == "allow" ? 22 : nil
        case 6: return name == "server" ? 54 : nil
        case 7:
            if name == "expires" { return 36 }
            return name == "refresh" ? 52 : nil
        case 8: return name == "location" ? 46 : nil
        case 10: return name == "set-cookie" ? 55 : nil
        case 11: return name == "retry-after" ? 53 : nil
        case 12: return name == "content-type" ? 31 : nil
        case 13:
            switch name {
            case "cache-control": return 24
            case "last-modified": return 44
            case "accept-ranges": return 18
            case "content-range": return 30
            default: return nil
            }
        case 14: return name == "content-length" ? 28 : nil
        case 16:
            switch name {
            case "content-encoding": return 26
            case "content-language": return 27
            case "content-location": return 29
            case "www-authenticate": return 61
            default: return nil
            }
        case 17: return name == "transfer-encoding" ? 57 : nil
        case 18: return name == "proxy-authenticate" ? 48 : nil
        case 19: return name == "content-disposition" ? 25 : nil
        case 25: return name == "strict-transport-security" ? 56 : nil
        case 27: return name == "access-control-allow-origin" ? 20 : nil
        default: return nil
        }
    }
}

import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 heads and chunk framing straight into `ByteBuffer`s: the proxy's data plane sends
/// them without going through a channel handler per message.
enum HTTP1Serializer {
    /// `HTTP/1.x code reason` and the headers, ending with the empty line.
    static func writeResponseHead(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        writeVersion(head.version, into: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        writeDecimal(Int(head.status.code), into: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        writeHeaders(head.headers, into: &buffer)
    }

    /// `METHOD target HTTP/1.1` and the headers, ending with the empty line. Always HTTP/1.1, whatever
    /// `head.version` says (the proxy speaks HTTP/1.1 to backends for HTTP/1.0 and HTTP/2 clients alike).
    static func writeRequestHead(_ head: HTTPRequestHead, into buffer: inout ByteBuffer) {
        buffer.writeString(head.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        writeHeaders(head.headers, into: &buffer)
    }

    /// A rough size for a head's buffer, so it is allocated once.
    static func estimatedSize(of headers: HTTPHeaders, plus extra: Int) -> Int {
        var n = extra + 2
        for (name, value) in headers { n += name.utf8.count + value.utf8.count + 4 }
        return n
    }

    static func writeHeaders(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// `size CRLF` in front of a chunk of `length` bytes (the chunk's own CRLF comes after it).
    static func writeChunkHeader(length: Int, into buffer: inout ByteBuffer) {
        writeHex(length, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    static let lastChunk: StaticString = "0\r\n\r\n"

    private static func writeVersion(_ version: HTTPVersion, into buffer: inout ByteBuffer) {
        if version.major == 1 && version.minor == 0 {
            buffer.writeStaticString("HTTP/1.0")
        } else {
            buffer.writeStaticString("HTTP/1.1")
        }
    }

    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        precondition(value >= 0)
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { out in
            while v > 0 {
                out[19 - count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: out[(20 - count)...]))
        }
    }

    private static func writeHex(_ value: Int, into buffer: inout ByteBuffer) {
        precondition(value >= 0)
        var shift = 60
        while shift > 0 && (value >> shift) & 0xF == 0 { shift -= 4 }
        while shift >= 0 {
            let nibble = UInt8((value >> shift) & 0xF)
            buffer.writeInteger(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
            shift -= 4
        }
    }
}

import NIOCore
import NIOHTTP1

/// Header fields the front adds to a response head as it writes it, each replacing any field of the
/// same name in the head. They are written by the serializer (HTTP/1.1) or added to the header block
/// (HTTP/2) instead of being put into the head's header array first, which would copy that array when it
/// is shared (a cached response's) and cost a pass over it per field.
struct ResponseHeadExtras {
    /// `X-Request-ID`.
    var requestID: String
    /// `Content-Length`, for answers whose length is known here (local answers).
    var contentLength: Int?
    /// `Connection: close` (HTTP/1.1 only).
    var close = false
    /// `Transfer-Encoding: chunked` (HTTP/1.1 only; set by the front when it frames the body).
    var chunked = false
    /// Any other fields (`X-Cache`, `Age`, rate-limit headers).
    var fields: HTTPHeaders = [:]

    init(requestID: String, contentLength: Int? = nil, close: Bool = false, fields: HTTPHeaders = [:]) {
        self.requestID = requestID
        self.contentLength = contentLength
        self.close = close
        self.fields = fields
    }

    /// Whether a field of the head named `name` is left out because one of these replaces it.
    func replaces(_ name: String) -> Bool {
        switch name.utf8.count {
        case 12 where HopByHop.equalsIgnoringASCIICase(name, RequestID.headerName): return true
        case 14 where contentLength != nil && HopByHop.equalsIgnoringASCIICase(name, "Content-Length"): return true
        case 10 where close && HopByHop.equalsIgnoringASCIICase(name, "Connection"): return true
        case 17 where chunked && HopByHop.equalsIgnoringASCIICase(name, "Transfer-Encoding"): return true
        default: break
        }
        for (extra, _) in fields where HopByHop.equalsIgnoringASCIICase(name, extra) { return true }
        return false
    }

    /// ``replaces(_:)`` for a name given as its bytes (a wire field line's).
    func replaces(nameBytes name: UnsafeRawBufferPointer) -> Bool {
        let bytes = name.bindMemory(to: UInt8.self)
        switch bytes.count {
        case 12 where HTTP1Parser.equalsLowercased(bytes, 0..<12, "x-request-id"): return true
        case 14 where contentLength != nil && HTTP1Parser.equalsLowercased(bytes, 0..<14, "content-length"): return true
        case 10 where close && HTTP1Parser.equalsLowercased(bytes, 0..<10, "connection"): return true
        case 17 where chunked && HTTP1Parser.equalsLowercased(bytes, 0..<17, "transfer-encoding"): return true
        default: break
        }
        if fields.isEmpty { return false }
        let decoded = HTTP1Parser.fieldName(bytes, 0..<bytes.count)
        for (extra, _) in fields where HopByHop.equalsIgnoringASCIICase(decoded, extra) { return true }
        return false
    }

    /// Whether the head, with these added, declares a length.
    func hasContentLength(_ head: ProxyResponseHead) -> Bool {
        contentLength != nil || fields.contains(name: "Content-Length") || head.hasContentLength
    }
}

/// Writes HTTP/1.1 heads and chunk framing straight into `ByteBuffer`s: the proxy's data plane sends
/// them without going through a channel handler per message.
///
/// A head is written in one pass over raw memory (its size is known up front), not field by field through
/// `ByteBuffer`'s writers, which check capacity and ownership on every call.
enum HTTP1Serializer {
    /// `HTTP/1.x code reason`, the head's headers except those `extras` replace, then `extras`, ending
    /// with the empty line.
    static func writeResponseHead(_ head: ProxyResponseHead, extras: ResponseHeadExtras, into buffer: inout ByteBuffer) {
        let reason = head.status.reasonPhrase
        var size = 8 + 1 + 20 + 1 + reason.utf8.count + 2 + 2
        switch head.fields {
        case .headers(let headers): size += fieldsSize(headers)
        case .wire(let wire): size += wire.maxSerializedSize
        }
        size += RequestID.headerName.utf8.count + extras.requestID.utf8.count + 4
        if extras.contentLength != nil { size += 14 + 20 + 4 }
        if extras.close { size += 19 }
        if extras.chunked { size += 28 }
        size += fieldsSize(extras.fields)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var w = RawWriter(out)
            w.put(head.version.major == 1 && head.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            w.putDecimal(Int(head.status.code))
            w.put(UInt8(ascii: " "))
            w.putString(reason)
            w.put("\r\n")
            switch head.fields {
            case .headers(let headers):
                for (name, value) in headers where !extras.replaces(name) { w.putField(name, value) }
            case .wire(let wire):
                // The lines as they came (each checked by the parser), with a CRLF whatever ended them.
                wire.forEachLine { line, nameLength in
                    if extras.replaces(nameBytes: UnsafeRawBufferPointer(rebasing: line[0..<nameLength])) { return }
                    w.put(line)
                    w.put("\r\n")
                }
            }
            w.putField(RequestID.headerName, extras.requestID)
            if let length = extras.contentLength {
                w.put("Content-Length: ")
                w.putDecimal(length)
                w.put("\r\n")
            }
            if extras.close { w.put("Connection: close\r\n") }
            if extras.chunked { w.put("Transfer-Encoding: chunked\r\n") }
            for (name, value) in extras.fields { w.putField(name, value) }
            w.put("\r\n")
            return w.count
        }
    }

    /// `METHOD target HTTP/1.1` and the headers, ending with the empty line. Always HTTP/1.1, whatever
    /// `head.version` says (the proxy speaks HTTP/1.1 to backends for HTTP/1.0 and HTTP/2 clients alike).
    /// `uri`: the target in place of `head.uri`; `host`: a `Host` field in place of the head's;
    /// `forwarded`: those fields are added; `chunked`: a `Transfer-Encoding: chunked` field is added;
    /// `upgrade`: `Connection: upgrade` and `Upgrade` with this value are added.
    static func writeRequestHead(
        _ head: HTTPRequestHead, uri: String? = nil, host: String? = nil, forwarded: ForwardedFields? = nil, chunked: Bool = false,
        upgrade: String? = nil, into buffer: inout ByteBuffer
    ) {
        let method = head.method.rawValue
        let target = uri ?? head.uri
        var size = method.utf8.count + 1 + target.utf8.count + 11 + fieldsSize(head.headers) + (chunked ? 28 : 0) + 2
        if let host { size += host.utf8.count + 8 }
        if let upgrade { size += 21 + 11 + upgrade.utf8.count }
        forwarded?.forEach { size += $0.utf8.count + $1.utf8.count + 4 }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var w = RawWriter(out)
            w.putString(method)
            w.put(UInt8(ascii: " "))
            w.putString(target)
            w.put(" HTTP/1.1\r\n")
            if let host { w.putField("Host", host) }
            for (name, value) in head.headers {
                if host != nil && name.utf8.count == 4 && HopByHop.equalsIgnoringASCIICase(name, "Host") { continue }
                w.putField(name, value)
            }
            forwarded?.forEach { w.putField($0, $1) }
            if chunked { w.put("Transfer-Encoding: chunked\r\n") }
            if let upgrade {
                w.put("Connection: upgrade\r\n")
                w.putField("Upgrade", upgrade)
            }
            w.put("\r\n")
            return w.count
        }
    }

    /// The bytes `name: value CRLF` take for every field.
    static func fieldsSize(_ headers: HTTPHeaders) -> Int {
        var n = 0
        for (name, value) in headers { n += name.utf8.count + value.utf8.count + 4 }
        return n
    }

    /// `size CRLF` in front of a chunk of `length` bytes (the chunk's own CRLF comes after it).
    static func writeChunkHeader(length: Int, into buffer: inout ByteBuffer) {
        writeHex(length, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    static let lastChunk: StaticString = "0\r\n\r\n"

    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { out in
            var w = RawWriter(out)
            w.putDecimal(value)
            return w.count
        }
    }

    private static func writeHex(_ value: Int, into buffer: inout ByteBuffer) {
        precondition(value >= 0)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16) { out in
            var shift = 60
            while shift > 0 && (value >> shift) & 0xF == 0 { shift -= 4 }
            var i = 0
            while shift >= 0 {
                let nibble = UInt8((value >> shift) & 0xF)
                out[i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                i += 1
                shift -= 4
            }
            return i
        }
    }
}

/// Appends bytes to memory the caller sized for them. Every write is bounds-checked (in release builds
/// too): a size computed wrongly stops the process instead of writing past the buffer.
struct RawWriter {
    private let base: UnsafeMutableRawBufferPointer
    /// Bytes written; moved back only to fill in what was reserved (see `setFrameHeader`).
    var count = 0

    init(_ base: UnsafeMutableRawBufferPointer) {
        self.base = base
    }

    @inline(__always)
    mutating func put(_ byte: UInt8) {
        precondition(count < base.count, "head larger than its computed size")
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        precondition(count + bytes.count <= base.count, "head larger than its computed size")
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        (base.baseAddress! + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    mutating func put(_ string: StaticString) {
        put(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func putString(_ string: String) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { put(UnsafeRawBufferPointer($0)) }
        if done == nil {
            for byte in string.utf8 { put(byte) }
        }
    }

    @inline(__always)
    mutating func putField(_ name: String, _ value: String) {
        putString(name)
        put(UInt8(ascii: ":"))
        put(UInt8(ascii: " "))
        putString(value)
        put(UInt8(ascii: "\r"))
        put(UInt8(ascii: "\n"))
    }

    mutating func putDecimal(_ value: Int) {
        precondition(value >= 0)
        var v = value
        var digits = 1
        while v >= 10 {
            v /= 10
            digits += 1
        }
        precondition(count + digits <= base.count, "head larger than its computed size")
        v = value
        var i = count + digits - 1
        while i >= count {
            base[i] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            i -= 1
        }
        count += digits
    }
}

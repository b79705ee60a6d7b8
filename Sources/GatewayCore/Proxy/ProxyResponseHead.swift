import NIOCore
import NIOHTTP1

/// A response head on its way to a client. Its fields are either parsed (`HTTPHeaders`: local answers,
/// cached responses, HTTP/2 backends) or the field lines of an HTTP/1.1 backend's head as they came off
/// the wire (``HTTP1WireFields``). An HTTP/1.1 client gets wire fields copied line by line, without each
/// name and value being decoded into a `String` and written out again; anything that needs the fields
/// one by one (the HTTP/2 front, a fetch for the cache) reads ``headers``, which decodes them then.
struct ProxyResponseHead: Equatable {
    var version: HTTPVersion
    var status: HTTPResponseStatus
    var fields: Fields

    enum Fields {
        case headers(HTTPHeaders)
        case wire(HTTP1WireFields)
    }

    init(version: HTTPVersion, status: HTTPResponseStatus, headers: HTTPHeaders) {
        self.version = version
        self.status = status
        self.fields = .headers(headers)
    }

    init(version: HTTPVersion, status: HTTPResponseStatus, wire: HTTP1WireFields) {
        self.version = version
        self.status = status
        self.fields = .wire(wire)
    }

    init(_ head: HTTPResponseHead) {
        self.init(version: head.version, status: head.status, headers: head.headers)
    }

    /// The fields, decoded now if they are wire fields.
    var headers: HTTPHeaders {
        switch fields {
        case .headers(let headers): return headers
        case .wire(let wire): return wire.headers
        }
    }

    /// Whether a `Content-Length` field is among the fields.
    var hasContentLength: Bool {
        switch fields {
        case .headers(let headers): return headers.contains(name: "Content-Length")
        case .wire(let wire): return wire.hasContentLength
        }
    }

    /// Leaves out every field with one of `names` (lowercased): a definition's `response_headers.remove`.
    /// Wire fields stay wire fields, with those lines marked dropped.
    mutating func removeFields(named names: [String]) {
        switch fields {
        case .headers(var headers):
            for name in names { headers.remove(name: name) }
            fields = .headers(headers)
        case .wire(let wire):
            fields = .wire(wire.dropping(names))
        }
    }

    static func == (a: ProxyResponseHead, b: ProxyResponseHead) -> Bool {
        a.version == b.version && a.status == b.status && a.headers == b.headers
    }
}

/// The field lines of an HTTP/1.1 response head, as ``HTTP1Parser`` read and checked them: the bytes
/// between the status line and the empty line (a slice of the bytes read, not a copy), and which lines
/// are not to be forwarded (hop-by-hop fields and those `Connection` names).
struct HTTP1WireFields {
    /// The lines, each ending in CRLF or a bare LF. Every line is a valid `name: value` field.
    let lines: ByteBuffer
    /// Bit `i` set: line `i` is left out.
    let dropped: UInt64
    /// Whether a kept line is `Content-Length`.
    let hasContentLength: Bool

    /// A head with more field lines than this is parsed into `HTTPHeaders` instead (one bit per line in
    /// ``dropped``).
    static let maxLines = 64

    init(lines: ByteBuffer, dropped: UInt64, hasContentLength: Bool) {
        self.lines = lines
        self.dropped = dropped
        self.hasContentLength = hasContentLength
    }

    /// These fields with the lines named one of `names` (any letter case) dropped as well. `Content-Length`
    /// is never among them (definitions cannot remove framing fields).
    func dropping(_ names: [String]) -> HTTP1WireFields {
        var dropped = self.dropped
        forEveryLine(skipping: 0) { index, line, nameLength in
            let name = UnsafeBufferPointer(rebasing: line.bindMemory(to: UInt8.self)[0..<nameLength])
            if names.contains(where: { HopByHop.equalsIgnoringASCIICase(name, $0) }) { dropped |= 1 << UInt64(index) }
        }
        return HTTP1WireFields(lines: lines, dropped: dropped, hasContentLength: hasContentLength)
    }

    /// Calls `body` with each kept line, without its line ending, and the length of its name.
    @inline(__always)
    func forEachLine(_ body: (UnsafeRawBufferPointer, Int) -> Void) {
        forEveryLine(skipping: dropped) { _, line, nameLength in body(line, nameLength) }
    }

    /// Calls `body` with the index of every line but those whose bit `skipped` sets, the line without its
    /// ending, and the length of its name.
    @inline(__always)
    private func forEveryLine(skipping skipped: UInt64, _ body: (Int, UnsafeRawBufferPointer, Int) -> Void) {
        lines.withUnsafeReadableBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var position = 0
            var index = 0
            while let lf = bytes.firstIndex(of: UInt8(ascii: "\n"), in: position..<bytes.count) {
                defer {
                    position = lf + 1
                    index += 1
                }
                if skipped & (1 << UInt64(index)) != 0 { continue }
                let end = lf > position && bytes[lf - 1] == UInt8(ascii: "\r") ? lf - 1 : lf
                // The parser checked every line has a colon after a non-empty token name.
                let colon = bytes.firstIndex(of: UInt8(ascii: ":"), in: position..<end) ?? end
                body(index, UnsafeRawBufferPointer(rebasing: raw[position..<end]), colon - position)
            }
        }
    }

    /// The kept fields, decoded.
    var headers: HTTPHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(8)
        forEachLine { line, nameLength in
            let bytes = line.bindMemory(to: UInt8.self)
            fields.append((HTTP1Parser.fieldName(bytes, 0..<nameLength), HTTP1Parser.string(bytes, Self.valueRange(bytes, nameLength: nameLength))))
        }
        return HTTPHeaders(fields)
    }

    /// Where the value of a line (without its line ending) is: after the colon, without the whitespace
    /// around it.
    @inline(__always)
    static func valueRange(_ line: UnsafeBufferPointer<UInt8>, nameLength: Int) -> Range<Int> {
        var start = nameLength + 1
        var end = line.count
        while start < end && (line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t")) { start += 1 }
        while end > start && (line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t")) { end -= 1 }
        return start..<end
    }

    /// The most bytes the kept lines take once each ends in CRLF.
    var maxSerializedSize: Int { lines.readableBytes + Self.maxLines }
}

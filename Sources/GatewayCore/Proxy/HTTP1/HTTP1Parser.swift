import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why bytes could not be read as HTTP/1.1. Every case is answered 400, except
/// ``headTooLarge`` (431 for a request).
enum HTTP1ParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request line or status line is not `METHOD SP target SP HTTP/1.x` / `HTTP/1.x SP code ...`.
    case invalidStartLine
    /// An HTTP version other than 1.0 and 1.1.
    case unsupportedVersion
    /// A header line without a colon, with a bad name, a control character in its value, or folded.
    case invalidHeader
    /// The head (start line and headers, or trailers) is longer than the limit.
    case headTooLarge
    /// `Content-Length` that is not a number, or several that disagree.
    case invalidContentLength
    /// `Transfer-Encoding` other than a final `chunked`, or together with `Content-Length`.
    case invalidTransferEncoding
    /// A malformed chunk-size line or chunk terminator.
    case invalidChunk
    /// `CONNECT`, which a reverse proxy does not serve.
    case unsupportedMethod

    var description: String {
        switch self {
        case .invalidStartLine: return "invalid start line"
        case .unsupportedVersion: return "unsupported HTTP version"
        case .invalidHeader: return "invalid header line"
        case .headTooLarge: return "head too large"
        case .invalidContentLength: return "invalid Content-Length"
        case .invalidTransferEncoding: return "invalid Transfer-Encoding"
        case .invalidChunk: return "invalid chunked encoding"
        case .unsupportedMethod: return "unsupported method"
        }
    }
}

/// What a proxy needs to know of a head besides its headers, learned while parsing it.
struct HTTP1HeadInfo: Equatable, Sendable {
    /// Whether the connection stays open after this message (version and `Connection`).
    var keepAlive: Bool
    /// Whether the body is chunked on the wire.
    var chunked = false
    /// Requests: the `Host` value.
    var host: String?
    /// Requests: the `X-Request-ID` value.
    var requestID: String?
    /// Requests: whether any `X-Forwarded-For`, `-Proto` or `-Host` header is present.
    var hasForwardedHeaders = false
    /// Requests: false when the source knows there is no `Content-Length` field (the head is then not
    /// searched for one).
    var mayHaveContentLength = true
    /// Requests: the head's size, when the source measured it (the parser: its bytes on the wire;
    /// HTTP/2: names and values); nil makes the proxy count it.
    var headerBytes: Int?
}

/// One piece of a parsed HTTP/1.1 message.
enum HTTP1Part: Equatable {
    /// A request head, without hop-by-hop headers (RFC 9110 §7.6.1; ``HTTP1HeadInfo`` says what they said).
    case requestHead(HTTPRequestHead, HTTP1HeadInfo)
    /// A response head, without hop-by-hop headers (as ``HTTP1WireFields`` when the parser was made
    /// with `fieldsOnWire`), and whether the connection stays open after it. (Smaller than a request's:
    /// every part is copied a few times on its way out of the parser.)
    case responseHead(ProxyResponseHead, keepAlive: Bool)
    /// Body bytes, chunk framing removed. A slice of the input: no copy.
    case body(ByteBuffer)
    /// The message is complete (trailers, if any, are dropped).
    case end
}

/// An incremental HTTP/1.1 parser for the proxy's data plane (RFC 9112): requests on the front,
/// responses on upstream connections. It reads from the caller's buffer and consumes what it used, one
/// ``HTTP1Part`` at a time, so the caller decides when to go on (a pipelined request waits in the
/// buffer until the response before it is done).
///
/// It is strict where leniency lets requests be smuggled past a backend: `Transfer-Encoding` together
/// with `Content-Length`, a `Transfer-Encoding` that does not end in `chunked` (requests), differing
/// `Content-Length` values, obsolete line folding, and bare CR are errors. A bare LF ends a line.
///
/// Heads come out without their hop-by-hop headers (`Connection` and the fields it names,
/// `Keep-Alive`, `Transfer-Encoding`, `TE`, `Trailer`, `Upgrade`, `Proxy-*`): a proxy must not forward
/// them, and leaving them out here saves a pass over the headers on every message.
///
/// ```swift
/// var parser = HTTP1Parser(kind: .request, maxHeadBytes: 32 * 1024)
/// while let part = try parser.next(&buffer) { handle(part) }   // nil: needs more bytes
/// ```
struct HTTP1Parser {
    enum Kind {
        case request
        case response
    }

    private enum State {
        /// Waiting for a complete head. `scanned`: bytes already searched for its end.
        case head(scanned: Int)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(scanned: Int)
        /// A response delimited by the connection closing.
        case untilClose
        /// Parts end here: a message is complete and ``next(_:)`` must emit `.end`.
        case endPending
    }

    let kind: Kind
    let maxHeadBytes: Int
    /// Responses: heads keep their fields as the lines they arrived in (``HTTP1WireFields``), for a
    /// proxy that relays them to an HTTP/1.1 client as they are.
    let fieldsOnWire: Bool
    private var state = State.head(scanned: 0)
    /// Responses: whether the request being answered was HEAD (no body follows any status).
    var respondingToHEAD = false
    /// Responses: set when the body runs until the connection closes (the connection cannot be reused).
    private(set) var readsUntilClose = false
    /// Responses: the head just parsed is informational (1xx but 101), not relayed.
    private var informational = false
    /// Requests: the protocol the last request head asked to switch to (`Upgrade`, named in
    /// `Connection`, on a bodiless HTTP/1.1 request), such as `websocket`; nil for every other request
    /// (`h2c` is not offered upstream). Kept here rather than in the part: parts are copied as they
    /// come out, and one more field in the largest of them costs every request.
    private(set) var upgrade: String?

    init(kind: Kind, maxHeadBytes: Int, fieldsOnWire: Bool = false) {
        self.kind = kind
        self.maxHeadBytes = maxHeadBytes
        self.fieldsOnWire = fieldsOnWire && kind == .response
    }

    /// Whether body bytes of the current message are still to come (false right after a head that has
    /// no body: its `.end` follows without more bytes).
    var isBodyPending: Bool {
        switch state {
        case .fixedBody, .chunkSize, .chunkData, .chunkDataEnd, .trailers, .untilClose: return true
        case .head, .endPending: return false
        }
    }

    /// The next part from the start of `buffer`, consuming its bytes; nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> HTTP1Part? {
        while true {
            switch state {
            case .head(let scanned):
                guard let headLength = Self.findEndOfHead(buffer, from: scanned) else {
                    if buffer.readableBytes > maxHeadBytes { throw .headTooLarge }
                    // Bytes that cannot begin a request (a TLS ClientHello on the plain port, say) are
                    // refused now, not after the header-read timeout.
                    if kind == .request && scanned == 0 && !Self.couldStartRequest(buffer) { throw .invalidStartLine }
                    state = .head(scanned: max(0, buffer.readableBytes - 3))
                    return nil
                }
                if headLength > maxHeadBytes { throw .headTooLarge }
                let part = try parseHead(buffer, length: headLength)
                buffer.moveReaderIndex(forwardBy: headLength)
                if informational {
                    // Informational (100 Continue, 103 Early Hints): not relayed; the final response follows.
                    informational = false
                    state = .head(scanned: 0)
                    continue
                }
                return part
            case .fixedBody(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let n = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: n)!
                state = n == remaining ? .endPending : .fixedBody(remaining: remaining - n)
                return .body(slice)
            case .chunkSize:
                guard let (size, lineLength) = try Self.parseChunkSize(buffer) else {
                    if buffer.readableBytes > 1024 { throw .invalidChunk }  // a chunk-size line, extensions included
                    return nil
                }
                buffer.moveReaderIndex(forwardBy: lineLength)
                state = size == 0 ? .trailers(scanned: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let n = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: n)!
                state = n == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - n)
                return .body(slice)
            case .chunkDataEnd:
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
                if first == UInt8(ascii: "\n") {
                    buffer.moveReaderIndex(forwardBy: 1)
                } else if first == UInt8(ascii: "\r") {
                    guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
                    guard second == UInt8(ascii: "\n") else { throw .invalidChunk }
                    buffer.moveReaderIndex(forwardBy: 2)
                } else {
                    throw .invalidChunk
                }
                state = .chunkSize
            case .trailers(let scanned):
                // Either an empty line right away, or trailer fields ending in an empty line: dropped.
                guard buffer.readableBytes > 0 else { return nil }
                if let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), scanned == 0 {
                    if first == UInt8(ascii: "\n") {
                        buffer.moveReaderIndex(forwardBy: 1)
                        state = .endPending
                        continue
                    }
                    if first == UInt8(ascii: "\r") {
                        guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
                        guard second == UInt8(ascii: "\n") else { throw .invalidChunk }
                        buffer.moveReaderIndex(forwardBy: 2)
                        state = .endPending
                        continue
                    }
                }
                guard let length = Self.findEndOfHead(buffer, from: scanned) else {
                    if buffer.readableBytes > maxHeadBytes { throw .headTooLarge }
                    state = .trailers(scanned: max(1, buffer.readableBytes - 3))
                    return nil
                }
                if length > maxHeadBytes { throw .headTooLarge }
                buffer.moveReaderIndex(forwardBy: length)
                state = .endPending
            case .untilClose:
                guard buffer.readableBytes > 0 else { return nil }
                return .body(buffer.readSlice(length: buffer.readableBytes)!)
            case .endPending:
                state = .head(scanned: 0)
                readsUntilClose = false
                return .end
            }
        }
    }

    /// The connection closed. For a response delimited by the close, that is its end; anywhere else in a
    /// message it means the message was cut short (nil).
    mutating func connectionClosed() -> HTTP1Part? {
        if case .untilClose = state {
            state = .head(scanned: 0)
            readsUntilClose = false
            return .end
        }
        return nil
    }

    // MARK: - Heads

    /// The length of the head at the start of `buffer` up to and including its empty line, if complete.
    static func findEndOfHead(_ buffer: ByteBuffer, from scanned: Int) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            let bytes = raw.bindMemory(to: UInt8.self)
            let n = bytes.count
            var i = scanned
            // From one LF to the next (memchr is vectorized): a head is a handful of lines.
            while let lf = bytes.firstIndex(of: UInt8(ascii: "\n"), in: i..<n) {
                // "\n\n" or "\n\r\n"
                if lf + 1 < n && bytes[lf + 1] == UInt8(ascii: "\n") { return lf + 2 }
                if lf + 2 < n && bytes[lf + 1] == UInt8(ascii: "\r") && bytes[lf + 2] == UInt8(ascii: "\n") { return lf + 3 }
                i = lf + 1
            }
            return nil
        }
    }

    /// Whether the first bytes of `buffer` can be the start of a request line: optional empty lines,
    /// then a method token of at most 32 bytes followed by a space, then no control characters.
    static func couldStartRequest(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            var i = 0
            while i < bytes.count && (bytes[i] == UInt8(ascii: "\r") || bytes[i] == UInt8(ascii: "\n")) { i += 1 }
            let methodStart = i
            while i < bytes.count && bytes[i] != UInt8(ascii: " ") {
                guard isTokenByte(bytes[i]), i - methodStart < 32 else { return false }
                i += 1
            }
            while i < bytes.count && bytes[i] != UInt8(ascii: "\r") && bytes[i] != UInt8(ascii: "\n") {
                guard bytes[i] >= 0x20 && bytes[i] != 0x7f else { return false }
                i += 1
            }
            return true
        }
    }

    /// The head of `length` bytes at the start of `buffer`.
    private mutating func parseHead(_ buffer: ByteBuffer, length: Int) throws(HTTP1ParseError) -> HTTP1Part {
        let result: Result<HTTP1Part, HTTP1ParseError> = buffer.withUnsafeReadableBytes { raw in
            let bytes = UnsafeBufferPointer(rebasing: raw.bindMemory(to: UInt8.self)[0..<length])
            do throws(HTTP1ParseError) {
                return .success(try parseHead(bytes, wireLinesOf: fieldsOnWire ? buffer : nil))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// `wireLinesOf`: the buffer `bytes` start at, for a response head whose fields stay the lines they
    /// are (``HTTP1WireFields``, a slice of it), checked as strictly; a head with more than
    /// ``HTTP1WireFields/maxLines`` field lines is parsed into `HTTPHeaders` instead.
    private mutating func parseHead(_ bytes: UnsafeBufferPointer<UInt8>, wireLinesOf buffer: ByteBuffer?) throws(HTTP1ParseError) -> HTTP1Part {
        var lines = LineReader(bytes: bytes)
        guard var startLine = lines.next() else { throw .invalidStartLine }
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
        if startLine.isEmpty, kind == .request, let next = lines.next() { startLine = next }
        let fieldsStart = lines.position
        var fieldsEnd = fieldsStart
        var headers: [(String, String)] = []
        if buffer == nil { headers.reserveCapacity(8) }
        // Wire lines: bit `i` set for line `i` left out.
        var dropped: UInt64 = 0
        var index = 0
        var framing = Framing()
        while let line = lines.next(), !line.isEmpty {
            let (name, value) = try Self.parseHeaderLine(line, bytes: bytes)
            let disposition = framing.note(name: name, value: value, bytes: bytes)
            if buffer != nil {
                if index == HTTP1WireFields.maxLines { return try parseHead(bytes, wireLinesOf: nil) }
                if case .hopByHop = disposition { dropped |= 1 << UInt64(index) }
                index += 1
                fieldsEnd = lines.position
                continue
            }
            switch disposition {
            case .hopByHop: continue
            case .keep: headers.append((Self.fieldName(bytes, name), Self.string(bytes, value)))
            case .host:
                let v = Self.string(bytes, value)
                if framing.host == nil { framing.host = v }
                headers.append((Self.fieldName(bytes, name), v))
            case .requestID:
                let v = Self.string(bytes, value)
                if framing.requestID == nil { framing.requestID = v }
                headers.append((Self.fieldName(bytes, name), v))
            }
        }
        if framing.invalidContentLength { throw .invalidContentLength }
        if !framing.connectionTokens.isEmpty {
            // Fields the Connection header names are hop-by-hop too (Content-Length never is).
            let tokens = framing.connectionTokens
            func named(_ name: String) -> Bool { tokens.contains { HopByHop.equalsIgnoringASCIICase($0, name) } }
            if buffer != nil {
                dropped |= Self.fieldLines(bytes, from: fieldsStart) { named(Self.string(bytes, $0)) }
            } else {
                headers.removeAll { named($0.0) }
            }
        }
        switch kind {
        case .request:
            let (method, uri, version) = try Self.parseRequestLine(startLine, bytes: bytes)
            if method == .CONNECT { throw .unsupportedMethod }
            let info = HTTP1HeadInfo(
                keepAlive: framing.keepAlive(version), chunked: framing.hasTransferEncoding, host: framing.host, requestID: framing.requestID,
                hasForwardedHeaders: framing.hasForwardedHeaders, mayHaveContentLength: framing.contentLength != nil, headerBytes: bytes.count)
            upgrade = nil
            if framing.connectionUpgrade, let upgrade = framing.upgrade, version.minor >= 1, !framing.hasTransferEncoding,
                (framing.contentLength ?? 0) == 0
            {
                let value = Self.string(bytes, upgrade)  // a field value, without surrounding whitespace
                if !value.isEmpty && !HopByHop.equalsIgnoringASCIICase(value, "h2c") { self.upgrade = value }
            }
            if framing.hasTransferEncoding {
                guard framing.chunked, framing.contentLength == nil else { throw .invalidTransferEncoding }
                state = .chunkSize
            } else if let length = framing.contentLength, length > 0 {
                state = .fixedBody(remaining: length)
            } else {
                state = .endPending
            }
            return .requestHead(HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers)), info)
        case .response:
            let (version, status) = try Self.parseStatusLine(startLine, bytes: bytes)
            let keepAlive = try responseFraming(status, version: version, framing)
            if status.code == 101, let upgrade = framing.upgrade {
                // Switching protocols: the client must learn to what, so the `Upgrade` line stays.
                if buffer == nil {
                    headers.append(("Upgrade", Self.string(bytes, upgrade)))
                } else {
                    dropped &= ~Self.fieldLines(bytes, from: fieldsStart) { $0.count == 7 && Self.equalsLowercased(bytes, $0, "upgrade") }
                }
            }
            guard let buffer else {
                return .responseHead(ProxyResponseHead(version: version, status: status, headers: HTTPHeaders(headers)), keepAlive: keepAlive)
            }
            let wire = HTTP1WireFields(
                lines: buffer.getSlice(at: buffer.readerIndex + fieldsStart, length: fieldsEnd - fieldsStart)!, dropped: dropped,
                hasContentLength: framing.contentLength != nil)
            return .responseHead(ProxyResponseHead(version: version, status: status, wire: wire), keepAlive: keepAlive)
        }
    }

    /// How the body of a response with this status and these framing fields is delimited (the parser
    /// moves to reading it); returns whether the connection stays open.
    private mutating func responseFraming(_ status: HTTPResponseStatus, version: HTTPVersion, _ framing: Framing) throws(HTTP1ParseError) -> Bool {
        let code = status.code
        informational = code >= 100 && code < 200 && code != 101
        if respondingToHEAD || code == 204 || code == 304 || (code >= 100 && code < 200) {
            state = .endPending
        } else if framing.hasTransferEncoding {
            guard framing.contentLength == nil else { throw .invalidTransferEncoding }
            if framing.chunked {
                state = .chunkSize
            } else {
                readsUntilClose = true
                state = .untilClose
            }
        } else if let length = framing.contentLength {
            state = length > 0 ? .fixedBody(remaining: length) : .endPending
        } else {
            readsUntilClose = true
            state = .untilClose
        }
        return !readsUntilClose && framing.keepAlive(version)
    }

    /// Bit `i` set for each field line `i` (counted from `fieldsStart`, lines already checked) whose name
    /// `matches`: which wire lines a rule about names keeps or drops, looked for only when one applies.
    private static func fieldLines(
        _ bytes: UnsafeBufferPointer<UInt8>, from fieldsStart: Int, where matches: (Range<Int>) -> Bool
    ) -> UInt64 {
        var lines = LineReader(bytes: bytes)
        lines.position = fieldsStart
        var bits: UInt64 = 0
        var index = 0
        while let line = lines.next(), !line.isEmpty {
            let colon = bytes.firstIndex(of: UInt8(ascii: ":"), in: line) ?? line.upperBound
            if matches(line.lowerBound..<colon) { bits |= 1 << UInt64(index) }
            index += 1
        }
        return bits
    }

    /// What a header line means to the parser.
    private enum Disposition {
        case keep
        /// Not forwarded (its meaning is kept in ``Framing``).
        case hopByHop
        case host
        case requestID
    }

    /// What the headers say about the body's length and the connection, and the values a proxy reads.
    private struct Framing {
        var contentLength: Int?
        var invalidContentLength = false
        var hasTransferEncoding = false
        /// Whether the last transfer coding seen is `chunked`.
        var chunked = false
        var sawClose = false
        var sawKeepAlive = false
        /// Other fields `Connection` names (hop-by-hop as well).
        var connectionTokens: [String] = []
        var host: String?
        var requestID: String?
        var hasForwardedHeaders = false
        /// `Connection` names `upgrade`.
        var connectionUpgrade = false
        /// The first `Upgrade` field's value.
        var upgrade: Range<Int>?

        func keepAlive(_ version: HTTPVersion) -> Bool {
            if sawClose { return false }
            return version.minor >= 1 || sawKeepAlive
        }

        mutating func note(name: Range<Int>, value: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) -> Disposition {
            switch name.count {
            case 2 where HTTP1Parser.equalsLowercased(bytes, name, "te"): return .hopByHop
            case 4 where HTTP1Parser.equalsLowercased(bytes, name, "host"): return .host
            case 7 where HTTP1Parser.equalsLowercased(bytes, name, "upgrade"):
                if upgrade == nil { upgrade = value }
                return .hopByHop
            case 7 where HTTP1Parser.equalsLowercased(bytes, name, "trailer"):
                return .hopByHop
            case 10 where HTTP1Parser.equalsLowercased(bytes, name, "connection"):
                noteConnection(value, bytes: bytes)
                return .hopByHop
            case 10 where HTTP1Parser.equalsLowercased(bytes, name, "keep-alive"): return .hopByHop
            case 12 where HTTP1Parser.equalsLowercased(bytes, name, "x-request-id"): return .requestID
            case 15 where HTTP1Parser.equalsLowercased(bytes, name, "x-forwarded-for"):
                hasForwardedHeaders = true
                return .keep
            case 16
            where HTTP1Parser.equalsLowercased(bytes, name, "x-forwarded-host") || HTTP1Parser.equalsLowercased(bytes, name, "proxy-connection"):
                if bytes[name.lowerBound] | 0x20 == UInt8(ascii: "x") {
                    hasForwardedHeaders = true
                    return .keep
                }
                return .hopByHop
            case 17 where HTTP1Parser.equalsLowercased(bytes, name, "x-forwarded-proto"):
                hasForwardedHeaders = true
                return .keep
            case 18 where HTTP1Parser.equalsLowercased(bytes, name, "proxy-authenticate"): return .hopByHop
            case 19
            where HTTP1Parser.equalsLowercased(bytes, name, "proxy-authorization") || HTTP1Parser.equalsLowercased(bytes, name, "x-gateway-client-id"):
                return .hopByHop  // the second: the engine's own field (HopByHop.gatewayClientID), never a client's
            case 14 where HTTP1Parser.equalsLowercased(bytes, name, "content-length"):
                noteContentLength(value, bytes: bytes)
                return .keep
            case 17 where HTTP1Parser.equalsLowercased(bytes, name, "transfer-encoding"):
                noteTransferEncoding(value, bytes: bytes)
                return .hopByHop
            default: return .keep
            }
        }

        /// `close`, `keep-alive`, and the names of other hop-by-hop fields.
        private mutating func noteConnection(_ value: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) {
            var start = value.lowerBound
            while start < value.upperBound {
                var end = start
                while end < value.upperBound && bytes[end] != UInt8(ascii: ",") { end += 1 }
                var a = start
                var b = end
                while a < b && (bytes[a] == UInt8(ascii: " ") || bytes[a] == UInt8(ascii: "\t")) { a += 1 }
                while b > a && (bytes[b - 1] == UInt8(ascii: " ") || bytes[b - 1] == UInt8(ascii: "\t")) { b -= 1 }
                if HTTP1Parser.equalsLowercased(bytes, a..<b, "close") {
                    sawClose = true
                } else if HTTP1Parser.equalsLowercased(bytes, a..<b, "keep-alive") {
                    sawKeepAlive = true
                } else if HTTP1Parser.equalsLowercased(bytes, a..<b, "upgrade") {
                    connectionUpgrade = true  // `Upgrade` is hop-by-hop already
                } else if a < b && !HTTP1Parser.equalsLowercased(bytes, a..<b, "content-length") {
                    connectionTokens.append(HTTP1Parser.string(bytes, a..<b))
                }
                start = end + 1
            }
        }

        private mutating func noteContentLength(_ value: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) {
            // "5" and "5, 5" are one length; anything else (or two different lengths) is invalid.
            var length: Int?
            var current: Int?
            for i in value {
                let c = bytes[i]
                if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                    let (m, o1) = (current ?? 0).multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
                    if o1 || o2 {
                        invalidContentLength = true
                        return
                    }
                    current = s
                } else if c == UInt8(ascii: ",") {
                    guard let v = current, length == nil || length == v else {
                        invalidContentLength = true
                        return
                    }
                    length = v
                    current = nil
                } else if c != UInt8(ascii: " ") && c != UInt8(ascii: "\t") {
                    invalidContentLength = true
                    return
                }
            }
            guard let v = current, length == nil || length == v else {
                invalidContentLength = true
                return
            }
            if let contentLength, contentLength != v {
                invalidContentLength = true
                return
            }
            contentLength = v
        }

        private mutating func noteTransferEncoding(_ value: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) {
            hasTransferEncoding = true
            // The last coding in the list decides.
            var end = value.upperBound
            while end > value.lowerBound && (bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t")) { end -= 1 }
            var start = end
            while start > value.lowerBound && bytes[start - 1] != UInt8(ascii: ",") { start -= 1 }
            while start < end && (bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t")) { start += 1 }
            chunked = end - start == 7 && HTTP1Parser.equalsLowercased(bytes, start..<end, "chunked")
        }
    }

    private static func parseRequestLine(
        _ line: Range<Int>, bytes: UnsafeBufferPointer<UInt8>
    ) throws(HTTP1ParseError) -> (
        HTTPMethod, String, HTTPVersion
    ) {
        guard let firstSpace = bytes.firstIndex(of: UInt8(ascii: " "), in: line), firstSpace > line.lowerBound else {
            throw .invalidStartLine
        }
        guard let lastSpace = lastIndex(of: UInt8(ascii: " "), in: line, bytes: bytes), lastSpace > firstSpace + 1 else { throw .invalidStartLine }
        let methodRange = line.lowerBound..<firstSpace
        for i in methodRange where !isTokenByte(bytes[i]) { throw .invalidStartLine }
        let targetRange = (firstSpace + 1)..<lastSpace
        for i in targetRange where bytes[i] <= 0x20 || bytes[i] == 0x7f { throw .invalidStartLine }
        let version = try parseVersion((lastSpace + 1)..<line.upperBound, bytes: bytes)
        return (method(bytes, methodRange), string(bytes, targetRange), version)
    }

    private static func parseStatusLine(
        _ line: Range<Int>, bytes: UnsafeBufferPointer<UInt8>
    ) throws(HTTP1ParseError) -> (
        HTTPVersion, HTTPResponseStatus
    ) {
        // HTTP/1.1 200 OK  (the reason phrase may be empty, even without its space)
        guard line.count >= 12, bytes[line.lowerBound + 8] == UInt8(ascii: " ") else { throw .invalidStartLine }
        let version = try parseVersion(line.lowerBound..<(line.lowerBound + 8), bytes: bytes)
        var code = 0
        for i in (line.lowerBound + 9)..<(line.lowerBound + 12) {
            let c = bytes[i]
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { throw .invalidStartLine }
            code = code * 10 + Int(c - UInt8(ascii: "0"))
        }
        guard code >= 100 else { throw .invalidStartLine }
        if line.count > 12 {
            guard bytes[line.lowerBound + 12] == UInt8(ascii: " ") else { throw .invalidStartLine }
            let reason = (line.lowerBound + 13)..<line.upperBound
            for i in reason where (bytes[i] < 0x20 && bytes[i] != UInt8(ascii: "\t")) || bytes[i] == 0x7f { throw .invalidStartLine }
            let status = HTTPResponseStatus(statusCode: code)
            if case .custom = status { return (version, HTTPResponseStatus(statusCode: code, reasonPhrase: string(bytes, reason))) }
            return (version, status)
        }
        return (version, HTTPResponseStatus(statusCode: code))
    }

    private static func parseVersion(_ range: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) throws(HTTP1ParseError) -> HTTPVersion {
        guard range.count == 8, equalsExactly(bytes, range.lowerBound..<(range.lowerBound + 5), "HTTP/"),
            bytes[range.lowerBound + 6] == UInt8(ascii: ".")
        else { throw .invalidStartLine }
        let major = bytes[range.lowerBound + 5]
        let minor = bytes[range.lowerBound + 7]
        guard major == UInt8(ascii: "1") else {
            if major >= UInt8(ascii: "0") && major <= UInt8(ascii: "9") { throw .unsupportedVersion }
            throw .invalidStartLine
        }
        switch minor {
        case UInt8(ascii: "1"): return .http1_1
        case UInt8(ascii: "0"): return .http1_0
        case UInt8(ascii: "2")...UInt8(ascii: "9"): return .http1_1  // a later 1.x is answered as 1.1 (RFC 9110 §2.5)
        default: throw .invalidStartLine
        }
    }

    /// Splits `name: value`; trims the value's surrounding whitespace. A CR anywhere in the line, like any
    /// other control character, makes it invalid.
    private static func parseHeaderLine(_ line: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) throws(HTTP1ParseError) -> (Range<Int>, Range<Int>) {
        // The name, up to the colon, in one pass: a byte that is not a token byte ends it, and must be the colon.
        var colon = line.lowerBound
        while colon < line.upperBound && isTokenByte(bytes[colon]) { colon += 1 }
        guard colon < line.upperBound, colon > line.lowerBound, bytes[colon] == UInt8(ascii: ":") else {
            throw .invalidHeader  // also a folded line (it starts with whitespace, which is not a token byte)
        }
        var start = colon + 1
        var end = line.upperBound
        while start < end && (bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t")) { start += 1 }
        while end > start && (bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t")) { end -= 1 }
        guard isValidFieldValue(start..<end, bytes: bytes) else { throw .invalidHeader }
        return (line.lowerBound..<colon, start..<end)
    }

    /// No control character but HTAB, and no DEL (RFC 9110 §5.5). Eight bytes at a time: a word with no
    /// byte below 0x20 and none equal to 0x7f needs no closer look; one with a tab (or a bad byte) is
    /// checked byte by byte.
    static func isValidFieldValue(_ range: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return range.isEmpty }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            let below0x20 = (word &- ones &* 0x20) & ~word & highs
            let del = word ^ (ones &* 0x7f)
            let hasDEL = (del &- ones) & ~del & highs
            if below0x20 | hasDEL != 0 {
                for j in i..<(i + 8) where !isFieldValueByte(bytes[j]) { return false }
            }
            i += 8
        }
        while i < range.upperBound {
            if !isFieldValueByte(bytes[i]) { return false }
            i += 1
        }
        return true
    }

    @inline(__always)
    private static func isFieldValueByte(_ c: UInt8) -> Bool {
        (c >= 0x20 || c == UInt8(ascii: "\t")) && c != 0x7f
    }

    /// `size[;extensions]CRLF` at the start of `buffer`: the size and the line's length.
    private static func parseChunkSize(_ buffer: ByteBuffer) throws(HTTP1ParseError) -> (Int, Int)? {
        let result: Result<(Int, Int)?, HTTP1ParseError> = buffer.withUnsafeReadableBytes { bytes in
            var size = 0
            var digits = 0
            var i = 0
            while i < bytes.count {
                let c = bytes[i]
                let v: Int
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): v = Int(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): v = Int(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): v = Int(c - UInt8(ascii: "A") + 10)
                default: v = -1
                }
                if v < 0 { break }
                digits += 1
                if digits > 15 { return .failure(.invalidChunk) }
                size = size << 4 | v
                i += 1
            }
            guard i < bytes.count else { return .success(nil) }
            guard digits > 0 else { return .failure(.invalidChunk) }
            // Extensions (";name=value") are ignored; only the line's end matters.
            let c = bytes[i]
            guard c == UInt8(ascii: ";") || c == UInt8(ascii: "\r") || c == UInt8(ascii: "\n") || c == UInt8(ascii: " ") || c == UInt8(ascii: "\t")
            else { return .failure(.invalidChunk) }
            while i < bytes.count && bytes[i] != UInt8(ascii: "\n") {
                if bytes[i] == UInt8(ascii: "\r") && i + 1 < bytes.count && bytes[i + 1] != UInt8(ascii: "\n") { return .failure(.invalidChunk) }
                i += 1
            }
            guard i < bytes.count else { return .success(nil) }
            return .success((size, i + 1))
        }
        return try result.get()
    }

    // MARK: - Bytes

    /// Lines of a head, without their CRLF (or LF). A CR anywhere else is left for the line's parser to
    /// refuse (no start line or header line may hold a control character).
    private struct LineReader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        mutating func next() -> Range<Int>? {
            guard position < bytes.count, let lf = bytes.firstIndex(of: UInt8(ascii: "\n"), in: position..<bytes.count)
            else { return nil }
            var end = lf
            if end > position && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = position..<end
            position = lf + 1
            return line
        }
    }

    @inline(__always)
    static func isTokenByte(_ c: UInt8) -> Bool {
        // RFC 9110 §5.6.2 `tchar` (`!#$%&'*+-.^_`|~`, digits, letters): one character per ASCII code, 32 a
        // row, "1" for a token byte (HTTP1ParserTests checks it against the list). A load and a compare
        // per byte of a header name.
        let table: StaticString = """
            00000000000000000000000000000000\
            01011111001101101111111111000000\
            01111111111111111111111111100011\
            11111111111111111111111111101010
            """
        return c < 128 && table.utf8Start[Int(c)] == UInt8(ascii: "1")
    }

    private static func lastIndex(of byte: UInt8, in range: Range<Int>, bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = range.upperBound
        while i > range.lowerBound {
            i -= 1
            if bytes[i] == byte { return i }
        }
        return nil
    }

    static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// A header name as a `String`: the common ones, spelled as usual or in lower case, are string
    /// literals (no decoding, no validation, no allocation); others are decoded. The spelling is kept.
    static func fieldName(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        guard let base = bytes.baseAddress else { return "" }
        let start = base + range.lowerBound
        let n = range.count
        @inline(__always) func eq(_ literal: StaticString) -> Bool { memcmp(start, literal.utf8Start, n) == 0 }
        switch n {
        case 3:
            if eq("Age") { return "Age" }
            if eq("age") { return "age" }
        case 4:
            if eq("Host") { return "Host" }
            if eq("host") { return "host" }
            if eq("Date") { return "Date" }
            if eq("date") { return "date" }
            if eq("ETag") { return "ETag" }
            if eq("etag") { return "etag" }
            if eq("Vary") { return "Vary" }
            if eq("vary") { return "vary" }
        case 6:
            if eq("Accept") { return "Accept" }
            if eq("accept") { return "accept" }
            if eq("Server") { return "Server" }
            if eq("server") { return "server" }
            if eq("Cookie") { return "Cookie" }
            if eq("cookie") { return "cookie" }
            if eq("Origin") { return "Origin" }
            if eq("origin") { return "origin" }
        case 7:
            if eq("Expires") { return "Expires" }
            if eq("Referer") { return "Referer" }
            if eq("referer") { return "referer" }
        case 8:
            if eq("Location") { return "Location" }
            if eq("location") { return "location" }
        case 9:
            if eq("X-Api-Key") { return "X-Api-Key" }
            if eq("x-api-key") { return "x-api-key" }
        case 10:
            if eq("User-Agent") { return "User-Agent" }
            if eq("user-agent") { return "user-agent" }
            if eq("Set-Cookie") { return "Set-Cookie" }
            if eq("set-cookie") { return "set-cookie" }
        case 12:
            if eq("Content-Type") { return "Content-Type" }
            if eq("content-type") { return "content-type" }
            if eq("X-Request-ID") { return "X-Request-ID" }
            if eq("x-request-id") { return "x-request-id" }
        case 13:
            if eq("Cache-Control") { return "Cache-Control" }
            if eq("cache-control") { return "cache-control" }
            if eq("Last-Modified") { return "Last-Modified" }
            if eq("last-modified") { return "last-modified" }
            if eq("Authorization") { return "Authorization" }
            if eq("authorization") { return "authorization" }
            if eq("Accept-Ranges") { return "Accept-Ranges" }
            if eq("If-None-Match") { return "If-None-Match" }
        case 14:
            if eq("Content-Length") { return "Content-Length" }
            if eq("content-length") { return "content-length" }
        case 15:
            if eq("Accept-Encoding") { return "Accept-Encoding" }
            if eq("accept-encoding") { return "accept-encoding" }
            if eq("Accept-Language") { return "Accept-Language" }
            if eq("accept-language") { return "accept-language" }
            if eq("X-Forwarded-For") { return "X-Forwarded-For" }
            if eq("x-forwarded-for") { return "x-forwarded-for" }
        case 16:
            if eq("Content-Encoding") { return "Content-Encoding" }
            if eq("content-encoding") { return "content-encoding" }
        default: break
        }
        return string(bytes, range)
    }

    /// Whether `bytes[range]`, lower-cased (ASCII), equals `lowercased`, a literal of lower-case letters,
    /// digits and `-`.
    ///
    /// For bytes a head may hold (no control character but HTAB: the parser has checked them), a byte
    /// with bit 0x20 set equals such a literal byte only if it is that byte or, for a letter, its upper
    /// case: the other bytes that bit maps onto `-` or a digit are control characters (CR, 0x10–0x19).
    /// So the comparison sets that bit in eight bytes at a time.
    @inline(__always)
    static func equalsLowercased(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ lowercased: StaticString) -> Bool {
        let n = lowercased.utf8CodeUnitCount
        guard range.count == n, range.lowerBound >= 0, range.upperBound <= bytes.count, let base = bytes.baseAddress else { return false }
        let p = UnsafeRawPointer(base + range.lowerBound)
        let other = UnsafeRawPointer(lowercased.utf8Start)
        guard n >= 8 else {
            for k in 0..<n where p.load(fromByteOffset: k, as: UInt8.self) | 0x20 != other.load(fromByteOffset: k, as: UInt8.self) { return false }
            return true
        }
        @inline(__always) func word(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt64 {
            pointer.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        }
        let caseBits: UInt64 = 0x2020_2020_2020_2020
        var k = 0
        while k + 8 < n {
            if word(p, k) | caseBits != word(other, k) { return false }
            k += 8
        }
        return word(p, n - 8) | caseBits == word(other, n - 8)  // the last eight, overlapping the word before
    }

    private static func equalsExactly(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard range.count == n, range.lowerBound >= 0, range.upperBound <= bytes.count, let base = bytes.baseAddress else { return false }
        let p = base + range.lowerBound
        let other = text.utf8Start
        for k in 0..<n where p[k] != other[k] { return false }
        return true
    }

    /// The common methods without going through a `String`.
    private static func method(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> HTTPMethod {
        switch range.count {
        case 3:
            if equalsExactly(bytes, range, "GET") { return .GET }
            if equalsExactly(bytes, range, "PUT") { return .PUT }
        case 4:
            if equalsExactly(bytes, range, "POST") { return .POST }
            if equalsExactly(bytes, range, "HEAD") { return .HEAD }
        case 5: if equalsExactly(bytes, range, "PATCH") { return .PATCH }
        case 6: if equalsExactly(bytes, range, "DELETE") { return .DELETE }
        case 7:
            if equalsExactly(bytes, range, "OPTIONS") { return .OPTIONS }
            if equalsExactly(bytes, range, "CONNECT") { return .CONNECT }
        default: break
        }
        return HTTPMethod(rawValue: string(bytes, range))
    }
}

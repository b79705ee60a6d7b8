import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayCore

/// Everything `parser` makes of `bytes`, fed whole or in pieces of `step` bytes.
private func parse(
    _ bytes: String, kind: HTTP1Parser.Kind = .request, step: Int? = nil, maxHead: Int = 8192, headRequest: Bool = false, onWire: Bool = false
) throws(HTTP1ParseError) -> [HTTP1Part] {
    var parser = HTTP1Parser(kind: kind, maxHeadBytes: maxHead, fieldsOnWire: onWire)
    parser.respondingToHEAD = headRequest
    var parts: [HTTP1Part] = []
    var buffer = ByteBuffer()
    let all = Array(bytes.utf8)
    var offset = 0
    repeat {
        let n = min(step ?? all.count, all.count - offset)
        buffer.writeBytes(all[offset..<(offset + n)])
        offset += n
        while let part = try parser.next(&buffer) { parts.append(part) }
    } while offset < all.count
    return parts
}

/// The request head of `parts`, with its info.
private func requestHead(_ parts: [HTTP1Part]) -> (HTTPRequestHead, HTTP1HeadInfo)? {
    for case .requestHead(let head, let info) in parts { return (head, info) }
    return nil
}

/// The body bytes of `parts`, joined.
private func body(_ parts: [HTTP1Part]) -> String {
    var out = ""
    for case .body(let chunk) in parts { out += String(buffer: chunk) }
    return out
}

@Suite struct HTTP1ParserTests {
    /// A GET with headers: method, target, version and headers as sent; Host and X-Request-ID reported.
    @Test func parsesAGetRequest() throws {
        let parts = try parse("GET /a/b?c=1 HTTP/1.1\r\nHost: example.com\r\nX-Request-ID: abc\r\nAccept:  */* \r\n\r\n")
        let (head, info) = try #require(requestHead(parts))
        #expect(head.method == .GET && head.uri == "/a/b?c=1" && head.version == .http1_1)
        #expect(head.headers.first(name: "accept") == "*/*")
        #expect(info.host == "example.com" && info.requestID == "abc" && info.keepAlive && !info.chunked && !info.hasForwardedHeaders)
        #expect(parts.last == .end && parts.count == 2)
    }

    /// The same bytes fed one at a time give the same parts.
    @Test func bytesArrivingOneByOneGiveTheSameParts() throws {
        let text = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        let whole = try parse(text)
        let split = try parse(text, step: 1)
        #expect(requestHead(whole)?.0 == requestHead(split)?.0)
        #expect(body(whole) == "hello" && body(split) == "hello")
        #expect(whole.last == .end && split.last == .end)
    }

    /// Hop-by-hop headers, and the fields Connection names, are left out; Content-Length stays even when
    /// Connection names it; Connection: close says the connection does not stay open.
    @Test func leavesOutHopByHopHeaders() throws {
        let parts = try parse(
            "POST / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret, Content-Length\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
                + "TE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: Basic x\r\nContent-Length: 2\r\nX-Kept: yes\r\n\r\nok")
        let (head, info) = try #require(requestHead(parts))
        let names = head.headers.map { $0.name.lowercased() }
        #expect(names == ["host", "content-length", "x-kept"], "\(names)")
        #expect(!info.keepAlive)
        #expect(body(parts) == "ok")
    }

    /// HTTP/1.0 closes unless it asks to keep alive; X-Forwarded-* headers are noticed.
    @Test func http10KeepAliveAndForwardedHeaders() throws {
        let plain = try #require(requestHead(try parse("GET / HTTP/1.0\r\n\r\n")))
        #expect(plain.0.version == .http1_0 && !plain.1.keepAlive)
        let kept = try #require(requestHead(try parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")))
        #expect(kept.1.keepAlive && kept.1.hasForwardedHeaders)
    }

    /// A chunked body with extensions and trailers comes out without its framing, whole or byte by byte.
    @Test func decodesChunkedBodies() throws {
        let text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        for step in [nil, 1, 3] {
            let parts = try parse(text, step: step)
            #expect(requestHead(parts)?.1.chunked == true)
            #expect(body(parts) == "hello world")
            #expect(parts.last == .end)
        }
    }

    /// Two requests in one buffer come out one after the other.
    @Test func pipelinedRequests() throws {
        let parts = try parse("GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET /3 HTTP/1.1\r\n\r\n")
        let uris = parts.compactMap { part -> String? in
            if case .requestHead(let head, _) = part { return head.uri }
            return nil
        }
        #expect(uris == ["/1", "/2", "/3"])
        #expect(parts.filter { $0 == .end }.count == 3)
    }

    /// Framing that could smuggle a request past a backend is refused, as are malformed lines.
    @Test func refusesAmbiguousOrMalformedRequests() {
        let cases: [(String, HTTP1ParseError)] = [
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .invalidTransferEncoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", .invalidTransferEncoding),
            ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", .invalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", .invalidContentLength),
            ("GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", .invalidHeader),
            ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", .invalidHeader),
            ("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", .invalidHeader),
            ("GET / HTTP/2.0\r\n\r\n", .unsupportedVersion),
            ("GET /\r\n\r\n", .invalidStartLine),
            ("CONNECT example.com:443 HTTP/1.1\r\n\r\n", .unsupportedMethod),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .invalidChunk),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .invalidChunk),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text.debugDescription)") { try parse(text) }
        }
    }

    /// Header names keep the sender's spelling, whether or not they are among the common names the
    /// parser has as literals.
    @Test func headerNamesKeepTheirSpelling() throws {
        let parts = try parse(
            "GET / HTTP/1.1\r\nHost: a\r\ncontent-type: t\r\ncOnTeNt-LeNgTh: 0\r\nUser-Agent: u\r\nX-Custom-Thing: v\r\nAGE: 1\r\n\r\n")
        let (head, _) = try #require(requestHead(parts))
        #expect(head.headers.map(\.name) == ["Host", "content-type", "cOnTeNt-LeNgTh", "User-Agent", "X-Custom-Thing", "AGE"])
        #expect(head.headers.map(\.value) == ["a", "t", "0", "u", "v", "1"])
    }

    /// Field values are checked eight bytes at a time: every byte value at every position of values of
    /// every length up to 24 gets the byte-by-byte answer.
    @Test func fieldValueCheckMatchesTheByteRule() {
        var wrong: [String] = []
        for length in 1...24 {
            for position in 0..<length {
                for c in UInt8.min...UInt8.max {
                    var value = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    value[position] = c
                    let valid = value.withUnsafeBufferPointer { HTTP1Parser.isValidFieldValue(0..<length, bytes: $0) }
                    if valid != ((c >= 0x20 || c == 0x09) && c != 0x7f) { wrong.append("length \(length), byte \(c) at \(position)") }
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(10))")
        // Tabs and high bytes (obs-text) are allowed anywhere.
        let mixed = Array("a\tb\u{00e9}\tcdefghij\t".utf8)
        #expect(mixed.withUnsafeBufferPointer { HTTP1Parser.isValidFieldValue(0..<mixed.count, bytes: $0) })
    }

    /// The token-byte bit set is RFC 9110's `tchar` list, byte for byte.
    @Test func tokenBytesAreTheRFCsList() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for c in UInt8.min...UInt8.max {
            #expect(HTTP1Parser.isTokenByte(c) == tchar.contains(c), "byte \(c)")
        }
    }

    /// A bare CR anywhere in a head is refused, in the start line as in a header line.
    @Test func refusesBareCarriageReturns() {
        for text in [
            "GET /\ra HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\r\n\r\n", "G\rT / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nX\r: a\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", "GET / HTTP/1.1\r\n\rX: a\r\n\r\n",
        ] {
            #expect(throws: HTTP1ParseError.self, "\(text.debugDescription)") { try parse(text) }
        }
        for text in ["HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\nA: \rb\r\n\r\n"] {
            #expect(throws: HTTP1ParseError.self, "\(text.debugDescription)") { try parse(text, kind: .response) }
        }
    }

    /// A head past the limit is refused as soon as the limit is passed, complete or not.
    @Test func refusesHeadsPastTheLimit() {
        let long = "GET / HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: 300) + "\r\n"
        #expect(throws: HTTP1ParseError.headTooLarge) { try parse(long, maxHead: 200) }
        #expect(throws: HTTP1ParseError.headTooLarge) { try parse(long + "\r\n", maxHead: 200) }
    }

    /// Bytes that cannot start a request (a TLS ClientHello) are refused without waiting for a line end.
    @Test func refusesNonHTTPBytesAtOnce() {
        let clientHello = String(decoding: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03], as: UTF8.self)
        #expect(throws: HTTP1ParseError.invalidStartLine) { try parse(clientHello) }
        // An incomplete but plausible start is waited for.
        #expect((try? parse("GET /partial HTTP/1.")) == [])
    }

    /// Responses: a Content-Length body; no body after 204, 304 or a HEAD request; a 100 Continue before
    /// the final answer is skipped; a body without length runs until the connection closes.
    @Test func parsesResponses() throws {
        let ok = try parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi", kind: .response)
        guard case .responseHead(let head, let keepAlive) = ok.first else { Issue.record("no head"); return }
        #expect(head.status == .ok && keepAlive && !head.headers.contains(name: "connection"))
        #expect(body(ok) == "hi" && ok.last == .end)

        for text in ["HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"] {
            #expect(try parse(text, kind: .response).last == .end)
        }
        #expect(try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", kind: .response, headRequest: true).last == .end)

        let continued = try parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", kind: .response)
        guard case .responseHead(let final, _) = continued.first else { Issue.record("no head"); return }
        #expect(final.status == .created && continued.count == 2)

        var parser = HTTP1Parser(kind: .response, maxHeadBytes: 1024)
        var buffer = ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\nstream")
        var parts: [HTTP1Part] = []
        while let part = try parser.next(&buffer) { parts.append(part) }
        guard case .responseHead(_, let keepAlive) = parts.first else { Issue.record("no head"); return }
        #expect(!keepAlive && parser.readsUntilClose && body(parts) == "stream")
        #expect(parser.connectionClosed() == .end)
    }

    /// Valid messages cut at random places give the same parts as when fed whole, and random bytes
    /// (10,000 inputs, seeded) end in parts or an error, never a crash or a loop that does not end.
    @Test func randomCutsAndRandomBytes() throws {
        var rng = SplitMix64(seed: 0x5eed)
        let messages = [
            "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
            "POST /b HTTP/1.1\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello world",
            "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
        ]
        for _ in 0..<300 {
            let text = (0..<3).map { _ in messages[Int(rng.next() % UInt64(messages.count))] }.joined()
            let whole = try parse(text)
            var parser = HTTP1Parser(kind: .request, maxHeadBytes: 8192)
            var buffer = ByteBuffer()
            var cut: [HTTP1Part] = []
            var bytes = Array(text.utf8)[...]
            while !bytes.isEmpty {
                let n = min(bytes.count, 1 + Int(rng.next() % 17))
                buffer.writeBytes(bytes.prefix(n))
                bytes = bytes.dropFirst(n)
                while let part = try parser.next(&buffer) { cut.append(part) }
            }
            // Body slices may be cut differently; compare heads, joined bodies and ends.
            #expect(cut.compactMap(Self.head) == whole.compactMap(Self.head))
            #expect(body(cut) == body(whole))
            #expect(cut.filter { $0 == .end }.count == 3)
        }
        let alphabet = Array("GET POST HTTP/1.1 \r\n:;,0123456789abcdefABCDEF-Transfer-Encoding Content-Length chunked\t\u{0}\u{7f}".utf8)
        for _ in 0..<10_000 {
            var parser = HTTP1Parser(kind: rng.next() % 2 == 0 ? .request : .response, maxHeadBytes: 256)
            var buffer = ByteBuffer(bytes: (0..<Int(rng.next() % 200)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            var steps = 0
            do {
                while try parser.next(&buffer) != nil {
                    steps += 1
                    #expect(steps < 1_000, "no end to the parts")
                    if steps >= 1_000 { break }
                }
            } catch {}
        }
    }

    private static func head(_ part: HTTP1Part) -> HTTPRequestHead? {
        if case .requestHead(let head, _) = part { return head }
        return nil
    }

    /// A response head kept as its wire lines: the same fields, framing and errors as a parsed one; the
    /// lines the parser leaves out (hop-by-hop, named by Connection) are not written; what is written is
    /// what the parsed head gives (byte for byte but for whitespace around a value, which a line keeps),
    /// CRLF-terminated even after a bare LF. A head with more
    /// lines than a wire head holds is parsed into `HTTPHeaders`.
    @Test func responseFieldsOnWire() throws {
        let responses = [
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 07 Dec 2026 02:40:00 GMT\r\nContent-Type: text/plain\r\n"
                + "Content-Length: 2\r\nConnection: keep-alive\r\n\r\nhi",
            "HTTP/1.1 201 Created\nX-Hop: 1\nConnection: x-hop, close\nx-request-id: from-backend\nVary:  Accept \t\n"
                + "Keep-Alive: timeout=5\nTransfer-Encoding: chunked\n\n2\r\nhi\r\n0\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nProxy-Authenticate: Basic\r\nX-Cache: MISS\r\nAge: 3\r\n"
                + "Content-Length: 0\r\n\r\n",
            "HTTP/1.0 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nuntil close",
            "HTTP/1.1 204 No Content\r\n\r\n",
        ]
        let extrasCases = [
            ResponseHeadExtras(requestID: "rid"),
            ResponseHeadExtras(requestID: "rid", contentLength: 2, close: true, fields: ["x-cache": "HIT", "AGE": "0"]),
        ]
        for text in responses {
            let parsed = try parse(text, kind: .response)
            let wire = try parse(text, kind: .response, onWire: true)
            #expect(wire == parsed, "\(text)")
            #expect(body(wire) == body(parsed))
            guard case .responseHead(let wireHead, let wireKeepAlive)? = wire.first, case .responseHead(let head, let keepAlive)? = parsed.first
            else {
                Issue.record("no head: \(text)")
                continue
            }
            guard case .wire = wireHead.fields else {
                Issue.record("not kept as wire lines: \(text)")
                continue
            }
            #expect(wireKeepAlive == keepAlive && wireHead.hasContentLength == head.hasContentLength)
            #expect(!wireHead.headers.contains(name: "x-hop") && !wireHead.headers.contains(name: "keep-alive"))
            for extras in extrasCases {
                var fromWire = ByteBuffer()
                var fromParsed = ByteBuffer()
                HTTP1Serializer.writeResponseHead(wireHead, extras: extras, into: &fromWire)
                HTTP1Serializer.writeResponseHead(head, extras: extras, into: &fromParsed)
                // Byte for byte, but for the whitespace around a value, which a wire line keeps.
                if !text.contains("  ") { #expect(String(buffer: fromWire) == String(buffer: fromParsed)) }
                let reread = try parse(String(buffer: fromWire), kind: .response, headRequest: true)
                let rereadParsed = try parse(String(buffer: fromParsed), kind: .response, headRequest: true)
                #expect(reread.first == rereadParsed.first)
                #expect(String(buffer: fromWire).split(separator: "\r\n", omittingEmptySubsequences: false).allSatisfy { !$0.contains("\n") })
            }
        }
        var out = ByteBuffer()
        let second = try parse(responses[1], kind: .response, onWire: true)
        guard case .responseHead(let head, _)? = second.first else { Issue.record("no head"); return }
        HTTP1Serializer.writeResponseHead(head, extras: ResponseHeadExtras(requestID: "rid"), into: &out)
        #expect(String(buffer: out) == "HTTP/1.1 201 Created\r\nVary:  Accept \t\r\nX-Request-ID: rid\r\n\r\n")

        // Errors are the same: a bad line, differing lengths.
        for bad in ["HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"] {
            #expect(throws: HTTP1ParseError.self) { try parse(bad, kind: .response, onWire: true) }
        }

        // More lines than a wire head holds: parsed, and the same.
        let many = "HTTP/1.1 200 OK\r\n" + (0..<70).map { "X-F\($0): \($0)\r\n" }.joined() + "Content-Length: 0\r\n\r\n"
        let manyParts = try parse(many, kind: .response, onWire: true)
        guard case .responseHead(let manyHead, _)? = manyParts.first, case .headers(let fields) = manyHead.fields else {
            Issue.record("a long head was not parsed into HTTPHeaders")
            return
        }
        let manyParsed = try parse(many, kind: .response)
        #expect(fields.count == 71 && manyParts == manyParsed)
    }

    /// A definition's `response_headers.remove` on a backend's head: wire lines are marked dropped in any
    /// letter case (hop-by-hop lines stay dropped), parsed fields removed, and both serialize the same.
    @Test func removedFieldsLeaveWireAndParsedHeadsAlike() throws {
        let text =
            "HTTP/1.1 200 OK\r\nServer: backend/1.2\r\nConnection: X-Hop\r\nX-Hop: 1\r\nx-powered-by: php\r\nX-Kept: a\r\n"
            + "SERVER: again\r\nContent-Length: 2\r\n\r\nok"
        let removed = ["server", "x-powered-by", "x-absent"]
        for onWire in [true, false] {
            guard case .responseHead(var head, _)? = try parse(text, kind: .response, onWire: onWire).first else {
                Issue.record("no head")
                return
            }
            head.removeFields(named: removed)
            #expect(head.headers.map { $0.name.lowercased() } == ["x-kept", "content-length"], "onWire \(onWire)")
            #expect(head.hasContentLength)
            var out = ByteBuffer()
            HTTP1Serializer.writeResponseHead(head, extras: ResponseHeadExtras(requestID: "r"), into: &out)
            #expect(String(buffer: out) == "HTTP/1.1 200 OK\r\nX-Kept: a\r\nContent-Length: 2\r\nX-Request-ID: r\r\n\r\n", "onWire \(onWire)")
        }
    }

    /// Random response heads (seeded, 5,000): wire mode and parsed mode agree on success or failure and on
    /// the head; a wire head written for HTTP/1.1 (with and without fields the proxy adds) and as an HPACK
    /// block fits the size reserved for it (the writer stops the process otherwise), and the HTTP/1.1
    /// head reads back as the parsed head's does.
    @Test func randomResponseHeadsOnWire() throws {
        var rng = SplitMix64(seed: 0x31e0)
        let names = ["Content-Length", "connection", "Keep-Alive", "X-Request-ID", "x-a", "Set-Cookie", "TE", "Upgrade", "Date", "b"]
        let values = ["5", "close", "keep-alive, x-a", "x-a", "", " v ", "\t", "0", "5, 5", "chunked", "ü", "a\u{7f}"]
        let endings = ["\r\n", "\n"]
        let extras = [ResponseHeadExtras(requestID: "r"), ResponseHeadExtras(requestID: "r", contentLength: 7, close: true, fields: ["x-a": "1"])]
        var agreed = 0
        for _ in 0..<5_000 {
            var text = "HTTP/1.1 \(["200 OK", "204 No Content", "404 Not Found", "299 x"][Int(rng.next() % 4)])\r\n"
            for _ in 0..<Int(rng.next() % 8) {
                let name = names[Int(rng.next() % UInt64(names.count))]
                let value = values[Int(rng.next() % UInt64(values.count))]
                text += name + ":" + (rng.next() % 2 == 0 ? " " : "") + value + endings[Int(rng.next() % 2)]
            }
            text += "\r\n"
            let parsed = Result { try parse(text, kind: .response, headRequest: true) }
            let wire = Result { try parse(text, kind: .response, headRequest: true, onWire: true) }
            switch (parsed, wire) {
            case (.success(let a), .success(let b)):
                #expect(a == b, "\(text)")
                guard case .responseHead(let head, _)? = b.first, case .wire = head.fields, case .responseHead(let parsedHead, _)? = a.first
                else {
                    Issue.record("no wire head: \(text)")
                    continue
                }
                agreed += 1
                for extra in extras {
                    var out = ByteBuffer()
                    var fromParsed = ByteBuffer()
                    HTTP1Serializer.writeResponseHead(head, extras: extra, into: &out)
                    HTTP1Serializer.writeResponseHead(parsedHead, extras: extra, into: &fromParsed)
                    let reread = try parse(String(buffer: out), kind: .response, headRequest: true)
                    let rereadParsed = try parse(String(buffer: fromParsed), kind: .response, headRequest: true)
                    #expect(reread.first != nil && reread.first == rereadParsed.first, "\(text)")
                    var block = ByteBuffer()
                    HPACKFieldEncoder.writeHeadersFrame(head, extras: extra, stream: 1, endStream: true, into: &block)
                    #expect(block.readableBytes > 9)
                }
            case (.failure(let a), .failure(let b)):
                #expect("\(a)" == "\(b)", "\(text)")
            default:
                Issue.record("the modes disagree on \(text): \(parsed) / \(wire)")
            }
        }
        #expect(agreed > 1_000, "too few valid heads to mean anything: \(agreed)")
    }

    /// The word-at-a-time case-insensitive comparison agrees with a byte-by-byte one on every byte a
    /// checked head may hold (HTAB, 0x20–0x7e, 0x80–0xff), for names shorter and longer than a word.
    @Test func lowercasedComparisonMatchesByteRule() {
        var rng = SplitMix64(seed: 0xc0ffee)
        let literals: [StaticString] = [
            "te", "host", "close", "connection", "keep-alive", "content-length", "x-forwarded-proto", "proxy-authorization",
        ]
        let allowed: [UInt8] = [0x09] + Array(0x20...0x7e) + Array(0x80...0xff)
        for literal in literals {
            let text = Array(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
            for _ in 0..<2_000 {
                var bytes = text.map {
                    rng.next() % 2 == 0 ? $0 : UInt8(ascii: "A") <= ($0 & ~0x20) && ($0 & ~0x20) <= UInt8(ascii: "Z") ? $0 & ~0x20 : $0
                }
                if rng.next() % 2 == 0 { bytes[Int(rng.next() % UInt64(bytes.count))] = allowed[Int(rng.next() % UInt64(allowed.count))] }
                let expected =
                    bytes.count == text.count
                    && zip(bytes, text).allSatisfy { b, t in (UInt8(ascii: "A")...UInt8(ascii: "Z") ~= b ? b | 0x20 : b) == t }
                let got = bytes.withUnsafeBufferPointer { HTTP1Parser.equalsLowercased($0, 0..<$0.count, literal) }
                #expect(got == expected, "\(String(decoding: bytes, as: UTF8.self)) vs \(literal)")
            }
        }
    }

    /// The serializer writes heads and chunk framing as the parser reads them.
    @Test func serializerRoundTrips() throws {
        var buffer = ByteBuffer()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        HTTP1Serializer.writeResponseHead(
            ProxyResponseHead(version: .http1_1, status: .notFound, headers: headers), extras: ResponseHeadExtras(requestID: "r"), into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-Request-ID: r\r\n\r\n")

        buffer.clear()
        HTTP1Serializer.writeRequestHead(HTTPRequestHead(version: .http1_1, method: .PATCH, uri: "/x?y", headers: ["Host": "h"]), into: &buffer)
        let parts = try parse(String(buffer: buffer))
        #expect(requestHead(parts)?.0.method == .PATCH && requestHead(parts)?.0.uri == "/x?y" && requestHead(parts)?.1.host == "h")

        for (length, hex) in [(1, "1"), (255, "ff"), (4096, "1000"), (1_000_000, "f4240")] {
            buffer.clear()
            HTTP1Serializer.writeChunkHeader(length: length, into: &buffer)
            #expect(String(buffer: buffer) == hex + "\r\n")
        }
        for value in [0, 7, 10, 200, 65535, 123_456_789] {
            buffer.clear()
            HTTP1Serializer.writeDecimal(value, into: &buffer)
            #expect(String(buffer: buffer) == String(value))
        }
    }

    /// Fields added while writing replace the head's fields of the same names (any letter case), and a
    /// rewritten target and Host take the place of the head's.
    @Test func serializerAddsAndReplacesFields() throws {
        var buffer = ByteBuffer(string: "kept:")  // written after what the buffer holds
        let headers: HTTPHeaders = [
            "Content-Type": "text/plain", "x-request-id": "from-backend", "content-length": "3", "X-Cache": "MISS", "Age": "9",
        ]
        var extras = ResponseHeadExtras(requestID: "rid-1", contentLength: 12, close: true, fields: ["X-Cache": "HIT", "Age": "0"])
        extras.chunked = false
        HTTP1Serializer.writeResponseHead(ProxyResponseHead(version: .http1_0, status: .ok, headers: headers), extras: extras, into: &buffer)
        #expect(
            String(buffer: buffer)
                == "kept:HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-Request-ID: rid-1\r\nContent-Length: 12\r\n"
                + "Connection: close\r\nX-Cache: HIT\r\nAge: 0\r\n\r\n")
        #expect(extras.hasContentLength(ProxyResponseHead(version: .http1_1, status: .ok, headers: [:])))
        #expect(!ResponseHeadExtras(requestID: "r").hasContentLength(ProxyResponseHead(version: .http1_1, status: .ok, headers: ["A": "b"])))

        // A long head (past the buffer's first capacity) is written whole.
        buffer = ByteBuffer()
        let long = String(repeating: "v", count: 5000)
        HTTP1Serializer.writeResponseHead(
            ProxyResponseHead(version: .http1_1, status: .init(statusCode: 299), headers: ["X-Long": long]),
            extras: ResponseHeadExtras(requestID: "r"), into: &buffer)
        #expect(String(buffer: buffer) == "HTTP/1.1 299 \r\nX-Long: \(long)\r\nX-Request-ID: r\r\n\r\n")

        buffer.clear()
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/api/x?q=1", headers: ["host": "public.example", "Accept": "*/*"])
        let forwarded = ForwardedFields(forwardedFor: "10.1.1.1, 127.0.0.1", proto: "https", host: "public.example", requestID: "rid")
        HTTP1Serializer.writeRequestHead(head, uri: "/x?q=1", host: "10.0.0.7:8080", forwarded: forwarded, chunked: true, into: &buffer)
        #expect(
            String(buffer: buffer)
                == "GET /x?q=1 HTTP/1.1\r\nHost: 10.0.0.7:8080\r\nAccept: */*\r\nX-Forwarded-For: 10.1.1.1, 127.0.0.1\r\n"
                + "X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nX-Request-ID: rid\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(forwarded.headers.map(\.name) == ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID"])
    }
}

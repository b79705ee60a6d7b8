import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import Testing

@testable import GatewayCore

/// The codec on its own, byte for byte: what it hands up for the frames a client sends, and the frames it
/// writes for what the front sends down. (The front over real sockets, with curl, h2load and raw frames,
/// is in HTTP2AbuseTests, ProxyFrontTests and HTTPFrontServerTests.)
@Suite struct HTTP2ServerCodecTests {
    /// Response blocks decode (with NIO's decoder) to the head's fields, lower-cased and in order, then
    /// the request id, length and other fields the proxy adds; `:status 200` is one byte and other codes
    /// are literals; a field the extras replace is left out; `set-cookie` stays "never indexed"; long
    /// values and names outside the static table survive. Nothing enters the decoder's dynamic table.
    @Test func responseBlocksDecodeToTheFieldsGiven() throws {
        let head = HTTPResponseHead(
            version: .http1_1, status: .ok,
            headers: [
                "Server": "edge-balancer", "Date": "Sun, 06 Dec 2026 22:00:00 GMT", "Content-Type": "application/json",
                "X-Request-ID": "replaced", "Set-Cookie": "session=secret", "X-Long": String(repeating: "v", count: 300),
                "Strict-Transport-Security": "max-age=63072000", "X-Odd_Name.1": "kept",
            ])
        var extras = ResponseHeadExtras(requestID: "0AbC_-z01234567", contentLength: 42)
        extras.fields.add(name: "X-Cache", value: "HIT")
        var block = ByteBuffer()
        HPACKFieldEncoder.writeHeadersFrame(ProxyResponseHead(head), extras: extras, stream: 1, endStream: false, into: &block)
        // The same fields as an HTTP/1.1 backend's wire lines (with a hop-by-hop field left out, and
        // whitespace around a value) give the same block.
        var wireText = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
        for (name, value) in head.headers { wireText += name == "Server" ? "\(name):\t \(value)  \n" : "\(name): \(value)\r\n" }
        var parser = HTTP1Parser(kind: .response, maxHeadBytes: 8192, fieldsOnWire: true)
        var wireBytes = ByteBuffer(string: wireText + "\r\n")
        guard case .responseHead(let wireHead, _)? = try parser.next(&wireBytes), case .wire = wireHead.fields else {
            Issue.record("no wire head")
            return
        }
        var wireBlock = ByteBuffer()
        HPACKFieldEncoder.writeHeadersFrame(wireHead, extras: extras, stream: 1, endStream: false, into: &wireBlock)
        #expect(wireBlock == block)
        #expect(block.readInteger(as: UInt32.self) == UInt32(block.readableBytes - 5) << 8 | 0x1)  // length, HEADERS
        #expect(block.readInteger(as: UInt8.self) == 0x4 && block.readInteger(as: UInt32.self) == 1)  // END_HEADERS, stream 1
        #expect(block.getInteger(at: block.readerIndex, as: UInt8.self) == 0x88)
        let expected = [
            ":status: 200", "server: edge-balancer", "date: Sun, 06 Dec 2026 22:00:00 GMT", "content-type: application/json",
            "set-cookie: session=secret", "x-long: " + String(repeating: "v", count: 300), "strict-transport-security: max-age=63072000",
            "x-odd_name.1: kept", "x-request-id: 0AbC_-z01234567", "content-length: 42", "x-cache: HIT",
        ]
        var decoder = HPACKDecoder(allocator: .init())
        for _ in 0..<2 {  // twice: nothing the first block did to the table may change the second
            var copy = block
            let decoded = try decoder.decodeHeaders(from: &copy)
            #expect(decoded.map { "\($0.name): \($0.value)" } == expected)
            #expect(decoded.first { $0.name == "set-cookie" }?.indexable == .neverIndexed)
        }
        for (status, value) in [(HTTPResponseStatus.serviceUnavailable, "503"), (.notFound, "404"), (.custom(code: 299, reasonPhrase: "x"), "299")] {
            var other = ByteBuffer()
            HPACKFieldEncoder.writeHeadersFrame(
                ProxyResponseHead(HTTPResponseHead(version: .http1_1, status: status)), extras: .init(requestID: "r"), stream: 3, endStream: true,
                into: &other)
            #expect(other.getInteger(at: 4, as: UInt8.self) == 0x5)  // END_STREAM, END_HEADERS
            other.moveReaderIndex(forwardBy: 9)
            #expect(try decoder.decodeHeaders(from: &other).first(name: ":status") == value)
        }
    }

    /// A request is handed to the stream handler as its decoded header list; a response block past the
    /// client's frame size goes out as HEADERS and CONTINUATION; a body past the client's windows stops at
    /// them, the stream is told its window is empty, and the rest (with END_STREAM) goes once
    /// WINDOW_UPDATEs arrive, after which the stream is reported closed and the body's write completes.
    @Test func headersAndDataWithinTheClientsWindows() throws {
        let channel = EmbeddedChannel()
        let codec = HTTP2ServerCodec(settings: .init(), allocator: channel.allocator)
        let recorder = StreamRecorder()
        codec.handler = recorder
        try channel.pipeline.syncOperations.addHandler(codec)
        let preface = try Self.frames(Self.readAll(channel))
        #expect(preface.map(\.type) == [0x4, 0x8], "the server's SETTINGS and connection WINDOW_UPDATE: \(preface)")

        try channel.writeInbound(
            ByteBuffer(
                bytes: HTTP2Wire.preface + HTTP2Wire.frame(type: 0x4)
                    + HTTP2Wire.frame(type: 0x1, flags: 0x5, stream: 1, payload: [0x82, 0x86, 0x84])))
        let request = try #require(recorder.requests.first)
        #expect(request.fields.first(name: ":path") == "/" && request.endStream && request.stream == 1)
        #expect(try Self.frames(Self.readAll(channel)).map(\.type) == [0x4], "SETTINGS ACK")

        let big = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["X-Big": String(repeating: "b", count: 20_000)])
        codec.writeResponseHead(ProxyResponseHead(big), extras: .init(requestID: "r"), stream: 1, endStream: false, promise: nil)
        codec.flush()
        let block = try Self.frames(Self.readAll(channel))
        #expect(block.map(\.type) == [0x1, 0x9] && block[0].flags & 0x4 == 0 && block[1].flags & 0x4 != 0, "\(block)")
        var joined = ByteBuffer(bytes: block.flatMap(\.payload))
        var decoder = HPACKDecoder(allocator: .init(), maxDynamicTableSize: 4096, maxHeaderListSize: 65_536)
        #expect(try decoder.decodeHeaders(from: &joined).first(name: "x-big")?.utf8.count == 20_000)

        let sent = channel.eventLoop.makePromise(of: Void.self)
        codec.writeData(ByteBuffer(repeating: 0x61, count: 100_000), stream: 1, endStream: true, promise: sent)
        codec.flush()
        let first = try Self.frames(Self.readAll(channel))
        #expect(first.allSatisfy { $0.type == 0x0 && $0.payload.count <= 16_384 && $0.flags & 0x1 == 0 })
        #expect(first.reduce(0) { $0 + $1.payload.count } == 65_535, "the client's initial windows")
        #expect(recorder.sendWindows.last == 0, "the stream was not told its window is empty")
        #expect(recorder.closed.isEmpty)

        try channel.writeInbound(
            ByteBuffer(
                bytes: HTTP2Wire.frame(type: 0x8, payload: HTTP2Wire.be32(40_000))
                    + HTTP2Wire.frame(type: 0x8, stream: 1, payload: HTTP2Wire.be32(40_000))))
        let rest = try Self.frames(Self.readAll(channel))
        #expect(rest.reduce(0) { $0 + $1.payload.count } == 100_000 - 65_535)
        #expect(rest.last?.flags == 0x1, "END_STREAM on the last DATA frame: \(rest)")
        #expect(recorder.closed == [1])
        var written: Result<Void, any Error>?
        sent.futureResult.assumeIsolated().whenComplete { written = $0 }
        #expect(written.map { (try? $0.get()) != nil } == true, "the body's write promise: \(String(describing: written))")
        _ = try? channel.finish()
    }

    /// The stream table answers as a dictionary would over a run of adds, replacements and removals
    /// (in any order, with ids reused after removal).
    @Test func streamTableActsAsADictionary() {
        var table = StreamTable<UInt32, Int>()
        var reference: [UInt32: Int] = [:]
        var generator = SystemRandomNumberGenerator()
        for step in 0..<5_000 {
            let id = UInt32.random(in: 0..<40, using: &generator) * 2 + 1
            switch step % 4 {
            case 0, 1:
                table[id] = step
                reference[id] = step
            case 2:
                #expect(table.removeValue(forKey: id) == reference.removeValue(forKey: id))
            default:
                table[id] = nil
                reference[id] = nil
            }
            #expect(table[id] == reference[id])
            #expect(table.count == reference.count && table.isEmpty == reference.isEmpty)
        }
        #expect(Dictionary(uniqueKeysWithValues: zip(table.keys, table.values)) == reference)
    }

    // MARK: - Helpers

    private static func readAll(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { continue }
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    /// The frames in `bytes`, which must end where the last frame ends.
    private static func frames(_ bytes: [UInt8]) throws -> [HTTP2Wire.Frame] {
        let frames = HTTP2Wire.frames(in: bytes)
        try #require(frames.allSatisfy { $0.payload.count == $0.length }, "a frame cut short")
        try #require(frames.reduce(0) { $0 + 9 + $1.length } == bytes.count, "bytes after the last frame")
        return frames
    }
}

/// What the codec tells its stream handler: requests, the streams reported closed, the send windows.
private final class StreamRecorder: HTTP2StreamHandler {
    var requests: [(fields: HPACKHeaders, stream: Int, endStream: Bool)] = []
    var closed: [Int] = []
    var sendWindows: [Int] = []

    func receivedHeaders(_ fields: HPACKHeaders, stream: HTTP2StreamID, endStream: Bool) {
        requests.append((fields, Int(stream), endStream))
    }

    func receivedData(_ data: ByteBuffer, stream: HTTP2StreamID, endStream: Bool) {}

    func streamClosed(_ stream: HTTP2StreamID) {
        closed.append(Int(stream))
    }

    func windowChanged(stream: HTTP2StreamID, inbound: Int?, outbound: Int?) {
        if stream != .rootStream, let outbound { sendWindows.append(outbound) }
    }
}

import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing

@testable import GatewayCore

/// The codec on its own, byte for byte: what it hands up for the frames a client sends, and the frames it
/// writes for what the front sends down. (The front over real sockets, with curl, h2load and raw frames,
/// is in HTTP2AbuseTests, ProxyFrontTests and HTTPFrontServerTests.)
@Suite struct HTTP2ServerCodecTests {
    /// Response blocks decode (with NIO's decoder) to the fields given, in order; `:status 200` is one
    /// byte; `set-cookie` stays "never indexed"; long values and names outside the static table survive.
    @Test func responseBlocksDecodeToTheFieldsGiven() throws {
        var fields = HPACKHeaders()
        fields.add(name: ":status", value: "200")
        fields.add(name: "server", value: "edge-balancer")
        fields.add(name: "date", value: "Sun, 06 Dec 2026 22:00:00 GMT")
        fields.add(name: "content-type", value: "application/json")
        fields.add(name: "x-request-id", value: "0AbC_-z012345678")
        fields.add(name: "set-cookie", value: "session=secret", indexing: .neverIndexed)
        fields.add(name: "x-long", value: String(repeating: "v", count: 300))
        fields.add(name: "strict-transport-security", value: "max-age=63072000")
        var block = ByteBuffer()
        HPACKFieldEncoder.encode(fields, into: &block)
        #expect(block.getInteger(at: 0, as: UInt8.self) == 0x88)
        var decoder = HPACKDecoder(allocator: .init())
        for _ in 0..<2 {  // twice: nothing the first block did to the table may change the second
            var copy = block
            let decoded = try decoder.decodeHeaders(from: &copy)
            #expect(decoded.map { "\($0.name): \($0.value)" } == fields.map { "\($0.name): \($0.value)" })
            #expect(decoded.first { $0.name == "set-cookie" }?.indexable == .neverIndexed)
        }
        var status = HPACKHeaders()
        status.add(name: ":status", value: "503")
        var other = ByteBuffer()
        HPACKFieldEncoder.encode(status, into: &other)
        #expect(try decoder.decodeHeaders(from: &other).first(name: ":status") == "503")
    }

    /// A request is handed up as its decoded HEADERS; a response block past the client's frame size goes
    /// out as HEADERS and CONTINUATION; a body past the client's windows stops at them, the stream is told
    /// its window is empty, and the rest (with END_STREAM) goes once WINDOW_UPDATEs arrive, after which the
    /// stream is reported closed.
    @Test func headersAndDataWithinTheClientsWindows() throws {
        let channel = EmbeddedChannel()
        let recorder = FrameRecorder()
        try channel.pipeline.syncOperations.addHandler(HTTP2ServerCodec(settings: .init(), allocator: channel.allocator))
        try channel.pipeline.syncOperations.addHandler(recorder)
        let preface = try Self.frames(Self.readAll(channel))
        #expect(preface.map(\.type) == [0x4, 0x8], "the server's SETTINGS and connection WINDOW_UPDATE: \(preface)")

        try channel.writeInbound(ByteBuffer(bytes: HTTP2ServerCodec.preface + Self.frame(type: 0x4)
            + Self.frame(type: 0x1, flags: 0x5, stream: 1, payload: [0x82, 0x86, 0x84])))
        let request = try #require(recorder.frames.first)
        guard case .headers(let headers) = request.payload else { Issue.record("not HEADERS: \(request)"); return }
        #expect(headers.headers.first(name: ":path") == "/" && headers.endStream)
        #expect(try Self.frames(Self.readAll(channel)).map(\.type) == [0x4], "SETTINGS ACK")

        var big = HPACKHeaders()
        big.add(name: ":status", value: "200")
        big.add(name: "x-big", value: String(repeating: "b", count: 20_000))
        channel.writeAndFlush(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: big))), promise: nil)
        let block = try Self.frames(Self.readAll(channel))
        #expect(block.map(\.type) == [0x1, 0x9] && block[0].flags & 0x4 == 0 && block[1].flags & 0x4 != 0, "\(block)")
        var joined = ByteBuffer(bytes: block.flatMap(\.payload))
        var decoder = HPACKDecoder(allocator: .init(), maxDynamicTableSize: 4096, maxHeaderListSize: 65_536)
        #expect(try decoder.decodeHeaders(from: &joined).first(name: "x-big")?.utf8.count == 20_000)

        let body = ByteBuffer(repeating: 0x61, count: 100_000)
        let sent = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(body), endStream: true))), promise: sent)
        let first = try Self.frames(Self.readAll(channel))
        #expect(first.allSatisfy { $0.type == 0x0 && $0.payload.count <= 16_384 && $0.flags & 0x1 == 0 })
        #expect(first.reduce(0) { $0 + $1.payload.count } == 65_535, "the client's initial windows")
        #expect(recorder.outboundWindows.last == 0, "the stream was not told its window is empty")
        #expect(!recorder.closed.contains(1))

        try channel.writeInbound(ByteBuffer(bytes: Self.frame(type: 0x8, payload: Self.be32(40_000))
            + Self.frame(type: 0x8, stream: 1, payload: Self.be32(40_000))))
        let rest = try Self.frames(Self.readAll(channel))
        #expect(rest.reduce(0) { $0 + $1.payload.count } == 100_000 - 65_535)
        #expect(rest.last?.flags == 0x1, "END_STREAM on the last DATA frame: \(rest)")
        #expect(recorder.closed == [1])
        var written: Result<Void, any Error>?
        sent.futureResult.whenComplete { written = $0 }
        #expect(written.map { (try? $0.get()) != nil } == true, "the body's write promise: \(String(describing: written))")
        _ = try? channel.finish()
    }

    // MARK: - Helpers

    private struct Frame {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
    }

    private static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    private static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8] = []) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags] + be32(stream) + payload
    }

    private static func readAll(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { continue }
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    private static func frames(_ bytes: [UInt8]) throws -> [Frame] {
        var frames: [Frame] = []
        var i = 0
        while i + 9 <= bytes.count {
            let length = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            let stream = UInt32(bytes[i + 5] & 0x7f) << 24 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 8 | UInt32(bytes[i + 8])
            try #require(i + 9 + length <= bytes.count, "a frame cut short")
            frames.append(Frame(type: bytes[i + 3], flags: bytes[i + 4], stream: stream, payload: Array(bytes[(i + 9)..<(i + 9 + length)])))
            i += 9 + length
        }
        try #require(i == bytes.count, "bytes after the last frame")
        return frames
    }
}

/// What the codec hands up: frames, the streams reported closed, and the send windows reported.
private final class FrameRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    var frames: [HTTP2Frame] = []
    var closed: [Int] = []
    var outboundWindows: [Int] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? StreamClosedEvent { closed.append(Int(event.streamID)) }
        if let event = event as? NIOHTTP2WindowUpdatedEvent, event.streamID != .rootStream, let size = event.outboundWindowSize {
            outboundWindows.append(size)
        }
    }
}

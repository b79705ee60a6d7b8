import NIOCore
import NIOEmbedded
import Testing

@testable import GatewayCore

@Suite struct WriteCoalescingHandlerTests {
    private func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
        return channel
    }

    private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    private func outbound(_ channel: EmbeddedChannel) throws -> [String] {
        var writes: [String] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { Issue.record("not a buffer"); continue }
            writes.append(String(buffer: buffer))
        }
        return writes
    }

    /// Small writes between two flushes leave as one write, in order, and every promise completes.
    @Test func smallWritesLeaveAsOneAtFlush() throws {
        let channel = try channel()
        let promises = (0..<3).map { _ in channel.eventLoop.makePromise(of: Void.self) }
        channel.write(buffer("HEADERS "), promise: promises[0])
        channel.write(buffer("DATA "), promise: nil)
        channel.write(buffer("HEADERS "), promise: promises[1])
        channel.write(buffer("DATA"), promise: promises[2])
        #expect(try outbound(channel).isEmpty)
        channel.flush()
        #expect(try outbound(channel) == ["HEADERS DATA HEADERS DATA"])
        for promise in promises { try promise.futureResult.wait() }

        channel.write(buffer("again"), promise: nil)
        channel.flush()
        #expect(try outbound(channel) == ["again"])
        #expect(try channel.finish().isClean)
    }

    /// A large buffer is passed on as it is, after what was gathered before it.
    @Test func largeWritesPassThroughInOrder() throws {
        let channel = try channel()
        let large = String(repeating: "x", count: WriteCoalescingHandler.passThroughBytes)
        channel.write(buffer("a"), promise: nil)
        channel.write(buffer("b"), promise: nil)
        channel.write(buffer(large), promise: nil)
        channel.write(buffer("c"), promise: nil)
        channel.flush()
        #expect(try outbound(channel) == ["ab", large, "c"])
        #expect(try channel.finish().isClean)
    }

    /// A close with gathered writes passes them on first (unflushed), so the channel fails them as it
    /// fails unflushed writes at a close: every promise fails, none is left hanging.
    @Test func closePassesGatheredWritesOnFirst() throws {
        let recorder = SocketLikeRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
        let first = channel.eventLoop.makePromise(of: Void.self)
        let second = channel.eventLoop.makePromise(of: Void.self)
        channel.write(ByteBuffer(string: "a"), promise: first)
        channel.write(ByteBuffer(string: "b"), promise: second)
        #expect(recorder.events.isEmpty)
        _ = try? channel.close().wait()
        #expect(recorder.events == ["write ab", "close"])
        #expect(throws: (any Error).self) { try first.futureResult.wait() }
        #expect(throws: (any Error).self) { try second.futureResult.wait() }
    }
}

/// Records writes and closes, and fails the promises of unflushed writes at a close, as a socket
/// channel does (EmbeddedChannel drops them).
private final class SocketLikeRecorder: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    var events: [String] = []
    private var unflushed: [EventLoopPromise<Void>] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .byteBuffer(let buffer) = unwrapOutboundIn(data) { events.append("write " + String(buffer: buffer)) }
        if let promise { unflushed.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        for promise in unflushed { promise.succeed() }
        unflushed = []
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        events.append("close")
        for promise in unflushed { promise.fail(ChannelError.ioOnClosedChannel) }
        unflushed = []
        context.close(mode: mode, promise: promise)
    }
}

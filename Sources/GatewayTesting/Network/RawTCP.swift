import GatewayCore
import NIOCore
import NIOPosix

/// Talks to a TCP server with raw bytes, independently of the client under test: used to check that a
/// test server answers before handing it to a test.
public enum RawTCP {
    /// Connects, writes `request` (if not empty), and returns what arrives until `isComplete` says the
    /// answer is whole, the peer closes, or `timeout` passes (then it throws ``TestTimeoutError``).
    /// `later`: more bytes, each written after its pause (a client that sends slowly); reading starts
    /// once they are all written.
    public static func exchange(
        host: String = "127.0.0.1",
        port: Int,
        request: [UInt8],
        later: [(pause: Duration, bytes: [UInt8])] = [],
        timeout: Duration = .seconds(5),
        isComplete: @escaping @Sendable ([UInt8]) -> Bool
    ) async throws -> [UInt8] {
        let later = later.map { Later(pause: $0.pause, bytes: $0.bytes) }
        return try await withTimeout(timeout, "an answer from \(host):\(port)") {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(timeout.timeAmount)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            return try await channel.executeThenClose { inbound, outbound in
                if !request.isEmpty {
                    // A peer that answers and hangs up at once may already be gone: still read its answer.
                    try? await outbound.write(ByteBuffer(bytes: request))
                }
                for part in later {
                    try await Task.sleep(for: part.pause)  // the slow client's pause, not a wait for a condition
                    try? await outbound.write(ByteBuffer(bytes: part.bytes))
                }
                var received: [UInt8] = []
                for try await chunk in inbound {
                    received += chunk.readableBytesView
                    if isComplete(received) { break }
                }
                return received
            }
        }
    }

    private struct Later: Sendable {
        var pause: Duration
        var bytes: [UInt8]
    }

    /// Sends an inline `PING` and returns the first reply line (`+PONG`, `-NOAUTH ...`, `-LOADING ...`),
    /// without the line end; nil if the peer closed without a whole line.
    public static func redisPing(host: String = "127.0.0.1", port: Int, timeout: Duration = .seconds(5)) async throws -> String? {
        let reply = try await exchange(host: host, port: port, request: Array("PING\r\n".utf8), timeout: timeout) {
            $0.contains(UInt8(ascii: "\n"))
        }
        guard let end = reply.firstIndex(of: UInt8(ascii: "\r")) else { return nil }
        return String(decoding: reply[..<end], as: UTF8.self)
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Drives a steady load of GET requests over keep-alive connections and tallies who answered.
///
/// `concurrency` connections each send one request after another until `requests` have been sent in
/// total or `timeLimit` passes, whichever comes first, so every run is bounded in count and time.
struct LoadClient {
    struct Result: Sendable, CustomStringConvertible {
        /// Successful (200) answers by backend id (the body).
        var byBackend: [String: Int] = [:]
        /// Everything else: status (0 for a transport error) and body.
        var failures: [(status: Int, detail: String)] = []
        var elapsed: Duration = .zero

        var succeeded: Int { byBackend.values.reduce(0, +) }
        var total: Int { succeeded + failures.count }

        func share(_ id: String) -> Double {
            succeeded == 0 ? 0 : Double(byBackend[id] ?? 0) / Double(succeeded)
        }

        var description: String {
            let shares = byBackend.keys.sorted().map { "\($0)=\($0.isEmpty ? 0 : byBackend[$0]!)" }.joined(separator: " ")
            return "\(succeeded) ok [\(shares)], \(failures.count) failed \(failures.prefix(3).map { "\($0.status) \($0.detail)" }), \(elapsed)"
        }
    }

    var host = "127.0.0.1"
    var port: Int
    var path = "/api"
    var concurrency = 8
    var requests: Int
    var timeLimit: Duration = .seconds(20)
    var method: HTTPMethod = .GET

    func run() async -> Result {
        let remaining = Remaining(requests)
        let clock = ContinuousClock()
        let deadline = clock.now + timeLimit
        let start = clock.now
        var result = await withTaskGroup(of: Result.self) { group in
            for _ in 0..<concurrency {
                group.addTask { await worker(remaining: remaining, deadline: deadline) }
            }
            var total = Result()
            for await partial in group {
                total.byBackend.merge(partial.byBackend, uniquingKeysWith: +)
                total.failures += partial.failures
            }
            return total
        }
        result.elapsed = clock.now - start
        return result
    }

    private func worker(remaining: Remaining, deadline: ContinuousClock.Instant) async -> Result {
        var result = Result()
        var connection: HTTPTestConnection?
        while ContinuousClock.now < deadline {
            let take = remaining.count.withLock { n -> Bool in
                guard n > 0 else { return false }
                n -= 1
                return true
            }
            guard take else { break }
            do {
                if connection == nil { connection = try await HTTPTestConnection.connect(host: host, port: port) }
                let (status, body, keepAlive) = try await connection!.request(method, path, host: "\(host):\(port)")
                if status == 200 {
                    result.byBackend[body, default: 0] += 1
                } else {
                    result.failures.append((Int(status), body))
                }
                if !keepAlive {
                    await connection?.close()
                    connection = nil
                }
            } catch {
                result.failures.append((0, "\(error)"))
                await connection?.close()
                connection = nil
            }
        }
        await connection?.close()
        return result
    }
}

/// One keep-alive HTTP/1.1 client connection, one request at a time, used by one task.
final class HTTPTestConnection {
    private let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    private var iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator

    private init(channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>) {
        self.channel = channel
        self.iterator = channel.inbound.makeAsyncIterator()
    }

    static func connect(host: String, port: Int) async throws -> HTTPTestConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return HTTPTestConnection(channel: channel)
    }

    struct ClosedError: Error {}

    /// Sends a request and reads the whole response: status, body, whether the connection stays open.
    func request(_ method: HTTPMethod, _ path: String, host: String, headers: HTTPHeaders = [:]) async throws -> (UInt, String, Bool) {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: host)
        try await channel.outbound.write(.head(head))
        try await channel.outbound.write(.end(nil))
        var response: HTTPResponseHead?
        var body = ByteBuffer()
        while let part = try await iterator.next() {
            switch part {
            case .head(let h): response = h
            case .body(var chunk): body.writeBuffer(&chunk)
            case .end:
                guard let response else { throw ClosedError() }
                return (response.status.code, String(buffer: body), response.isKeepAlive)
            }
        }
        throw ClosedError()
    }

    func close() async {
        try? await channel.channel.close()
    }
}

/// Requests left to send, shared by the workers.
private final class Remaining: Sendable {
    let count: Mutex<Int>
    init(_ n: Int) { count = Mutex(n) }
}

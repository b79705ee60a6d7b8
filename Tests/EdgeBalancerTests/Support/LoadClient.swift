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
        func take() -> Bool {
            guard ContinuousClock.now < deadline else { return false }
            return remaining.count.withLock { n in
                guard n > 0 else { return false }
                n -= 1
                return true
            }
        }
        var more = take()
        while more {
            // One connection, reused for as long as the balancer keeps it open.
            var inProgress = true
            do {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(2))
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(host: host, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                        }
                    }
                try await channel.executeThenClose { inbound, outbound in
                    var responses = inbound.makeAsyncIterator()
                    while more {
                        inProgress = true
                        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                        head.headers.add(name: "Host", value: "\(host):\(port)")
                        try await outbound.write(.head(head))
                        try await outbound.write(.end(nil))
                        var status: UInt = 0
                        var keepAlive = false
                        var body = ByteBuffer()
                        readResponse: while let part = try await responses.next() {
                            switch part {
                            case .head(let h):
                                status = h.status.code
                                keepAlive = h.isKeepAlive
                            case .body(var chunk):
                                body.writeBuffer(&chunk)
                            case .end:
                                break readResponse
                            }
                        }
                        guard status != 0 else { throw ConnectionClosed() }
                        inProgress = false
                        if status == 200 {
                            result.byBackend[String(buffer: body), default: 0] += 1
                        } else {
                            result.failures.append((Int(status), String(buffer: body)))
                        }
                        more = take()
                        if !keepAlive { return }
                    }
                }
            } catch {
                if inProgress {
                    result.failures.append((0, "\(error)"))
                    more = take()
                }
            }
        }
        return result
    }
}

struct ConnectionClosed: Error {}

/// Requests left to send, shared by the workers.
private final class Remaining: Sendable {
    let count: Mutex<Int>
    init(_ n: Int) { count = Mutex(n) }
}

import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// What a subscriber reports.
public enum RedisPubSubEvent: Sendable, Equatable {
    /// The subscription is in place. `resync` is true after a reconnect: messages may have been missed
    /// while disconnected, so the reader should reread whatever state the channel announces.
    case subscribed(resync: Bool)
    /// A message published on a subscribed channel.
    case message(channel: String, payload: String)
}

/// Subscribes to channels on its own connection and keeps the subscription alive: when the connection
/// drops it reconnects with jittered exponential backoff, subscribes again and reports
/// ``RedisPubSubEvent/subscribed(resync:)`` so readers resync.
///
/// A silent peer is found by a PING every `pingInterval`: no answer within another interval closes the
/// connection and starts a reconnect.
///
/// On a Redis Cluster any node carries every channel's messages (the cluster bus spreads them), so after
/// a failure the next attempt goes to the next node: the seeds, then, given the service's `client`, the
/// masters and replicas its last layout named. With every seed down the subscription still finds a node.
///
/// Run it as a `Service`; read ``events``.
public final class RedisSubscriber: Service, Sendable {
    public let events: AsyncStream<RedisPubSubEvent>
    private let continuation: AsyncStream<RedisPubSubEvent>.Continuation
    private let configuration: RedisConfiguration
    private let channels: [String]
    private let pingInterval: Duration
    private let client: RedisClient?
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: the Redis to subscribe on.
    ///   - channels: the channels to subscribe to.
    ///   - bufferSize: events kept for a slow reader; past it the oldest are dropped (pub/sub is lossy by
    ///     design and readers resync periodically).
    ///   - client: on a cluster, the service's client for the same Redis: the nodes its layout names are
    ///     tried after the seeds.
    public init(
        configuration: RedisConfiguration, channels: [String], pingInterval: Duration = .seconds(5),
        bufferSize: Int = 10_000, client: RedisClient? = nil, logger: Logger
    ) {
        (events, continuation) = AsyncStream.makeStream(of: RedisPubSubEvent.self, bufferingPolicy: .bufferingNewest(bufferSize))
        self.configuration = configuration
        self.channels = channels
        self.pingInterval = pingInterval
        self.client = client
        self.logger = logger
    }

    public func run() async throws {
        defer { continuation.finish() }
        let backoff = Backoff(initial: configuration.initialBackoff, maximum: configuration.maxBackoff)
        var failures = 0
        var everSubscribed = false
        var nodeIndex = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var configuration = self.configuration
            let nodes = candidates
            configuration.url = nodes[nodeIndex % nodes.count]
            do {
                let connection = try await RedisConnection.connect(configuration: configuration)
                let pongs = PongTracker()
                let channels = self.channels
                let continuation = self.continuation
                let resync = everSubscribed
                try await connection.enterPubSubMode { reply in
                    guard let parts = reply.array, let kind = parts.first?.string else { return }
                    switch kind {
                    case "message" where parts.count == 3:
                        continuation.yield(.message(channel: parts[1].string ?? "", payload: parts[2].string ?? ""))
                    case "subscribe" where parts.count == 3:
                        if parts[1].string == channels.last {
                            continuation.yield(.subscribed(resync: resync))
                        }
                    case "pong":
                        pongs.received()
                    default:
                        break
                    }
                }
                connection.sendWithoutReply(RedisCommand("SUBSCRIBE", arguments: channels.map { .string($0) }))
                if failures > 0 {
                    logger.info("redis subscription restored", metadata: ["redis.url": "\(configuration.url)"])
                }
                failures = 0
                everSubscribed = true
                try await keepAlive(connection, pongs: pongs)
                if Task.isShuttingDownGracefully { return }
                logger.warning("redis subscription lost; reconnecting", metadata: ["redis.url": "\(configuration.url)"])
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                nodeIndex += 1  // a node that cannot be reached: the next attempt tries the next one
                if failures == 1 {
                    logger.warning("redis subscribe failed", metadata: ["redis.url": "\(configuration.url)", "error": "\(error)"])
                }
            }
            let delay = backoff.delay(afterFailures: max(failures, 1))
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        }
    }

    /// Where a subscription may go: the URL (one server), or the seeds followed by the nodes of the
    /// client's last cluster layout.
    private var candidates: [RedisURL] {
        let seeds = configuration.seedURLs
        guard configuration.cluster, let known = client?.cluster?.knownNodes else { return seeds }
        return seeds + known.filter { node in !seeds.contains { $0.nodeAddress == node } }.map(configuration.url.at)
    }

    /// Pings until the connection closes, the peer stops answering, graceful shutdown begins, or the task
    /// is cancelled.
    private func keepAlive(_ connection: RedisConnection, pongs: PongTracker) async throws {
        try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try? await connection.closeFuture.get()
                }
                group.addTask {
                    // A graceful shutdown ends the subscription (it would otherwise last until cancelled).
                    try? await gracefulShutdown()
                }
                group.addTask { [pingInterval] in
                    while true {
                        try await Task.sleep(for: pingInterval)
                        if !pongs.answeredSinceLastPing() {
                            await connection.close()
                            return
                        }
                        connection.sendWithoutReply(RedisCommand("PING"))
                    }
                }
                try await group.next()
                group.cancelAll()
                await connection.close()
            }
        } onCancel: {
            connection.channel.close(promise: nil)
        }
        try Task.checkCancellation()
    }
}

/// Counts PONGs between pings; written on the connection's event loop, read by the ping task.
private final class PongTracker: Sendable {
    private let state = NIOLockedValueBox(State())
    private struct State {
        var outstanding = false
    }

    func received() { state.withLockedValue { $0.outstanding = false } }

    /// True if the previous ping was answered (or none was sent); marks a new ping as outstanding.
    func answeredSinceLastPing() -> Bool {
        state.withLockedValue { state in
            defer { state.outstanding = true }
            return !state.outstanding
        }
    }
}

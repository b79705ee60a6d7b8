import GatewayCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Subscribes to the events channel and hands every event to the registered handlers.
///
/// One subscription per engine serves the route-table watcher and the API key cache. Handlers run on
/// this service's task, one event at a time, and must return quickly (record the event, wake a loop).
/// Every (re)subscription is passed on as ``EngineEvent/resync``: a message published while the
/// subscription was down is lost, so readers reread their state.
final class EngineEvents: Service, Sendable {
    typealias Handler = @Sendable (EngineEvent) -> Void

    private let subscriber: RedisSubscriber
    private let handlers = NIOLockedValueBox<[Handler]>([])
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: the Redis to subscribe on.
    ///   - keys: names the channel (`<prefix>:events`).
    ///   - pingInterval: how often the subscription checks that Redis still answers.
    ///   - client: the engine's client for the same Redis; on a cluster, the nodes it knows are where the
    ///     subscription goes when the seeds cannot be reached.
    init(configuration: RedisConfiguration, keys: EngineKeys, pingInterval: Duration = .seconds(2), client: RedisClient? = nil, logger: Logger) {
        self.subscriber = RedisSubscriber(
            configuration: configuration, channels: [keys.events], pingInterval: pingInterval, client: client, logger: logger)
        self.logger = logger
    }

    /// Adds a handler; it sees every event from then on.
    func addHandler(_ handler: @escaping Handler) {
        handlers.withLockedValue { $0.append(handler) }
    }

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { [subscriber] in
                try await subscriber.run()
            }
            for await event in subscriber.events.cancelOnGracefulShutdown() {
                let decoded: EngineEvent?
                switch event {
                case .subscribed:
                    decoded = .resync
                case .message(_, let payload):
                    decoded = EngineEvent(message: payload)
                    if decoded == nil {
                        logger.debug("ignoring unreadable event", metadata: ["event.payload": "\(payload.prefix(200))"])
                    }
                }
                guard let decoded else { continue }
                for handler in handlers.withLockedValue({ $0 }) {
                    handler(decoded)
                }
            }
            group.cancelAll()
        }
    }
}

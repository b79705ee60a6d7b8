import GatewayCore
import GatewayTesting
import Testing

/// Pub/sub through `RedisSubscriber`, including a redis-server restart under it.
@Suite("Redis subscriber", .timeLimit(.minutes(1)))
struct RedisSubscriberTests {
    /// Messages published on any subscribed channel arrive after `.subscribed(resync: false)`; other
    /// channels are not delivered.
    @Test func deliversMessagesOfSubscribedChannels() async throws {
        try await withRedisClient { client, server async throws in
            let subscriber = RedisSubscriber(
                configuration: server.configuration(), channels: ["config", "nodes"], logger: .forTesting())
            let recorder = EventRecorder<RedisPubSubEvent>()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await subscriber.run() }
                group.addTask { await recorder.record(subscriber.events) }

                try await waitUntil("the subscription") { await recorder.contains(.subscribed(resync: false)) }
                try await client.publish("elsewhere", "ignored")
                try await client.publish("nodes", "node-1 up")
                try await client.publish("config", "version 7")
                try await waitUntil("both messages") { await recorder.elements.count >= 3 }

                #expect(
                    await recorder.elements == [
                        .subscribed(resync: false),
                        .message(channel: "nodes", payload: "node-1 up"),
                        .message(channel: "config", payload: "version 7"),
                    ])
                group.cancelAll()
            }
        }
    }

    /// After the redis-server restarts mid-test, the subscriber reconnects, reports
    /// `.subscribed(resync: true)` and receives messages again.
    @Test func resubscribesAfterRedisRestart() async throws {
        try await withRedisClient { client, server async throws in
            var configuration = server.configuration()
            configuration.initialBackoff = .milliseconds(10)
            configuration.maxBackoff = .milliseconds(50)
            // The restart closes the connection, which the subscriber notices at once; the ping interval
            // stays long so a loaded machine cannot cause an extra reconnect (and lose a message) on its own.
            let subscriber = RedisSubscriber(
                configuration: configuration, channels: ["config"], pingInterval: .seconds(5), logger: .forTesting())
            let recorder = EventRecorder<RedisPubSubEvent>()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await subscriber.run() }
                group.addTask { await recorder.record(subscriber.events) }

                try await waitUntil("the first subscription") { await recorder.contains(.subscribed(resync: false)) }
                try await client.publish("config", "before")
                try await waitUntil("the first message") { await recorder.contains(.message(channel: "config", payload: "before")) }

                try await server.restart()
                try await waitUntil("the resubscription") { await recorder.contains(.subscribed(resync: true)) }
                // The client's pooled connection died with the old server; publish until it has reconnected.
                try await waitUntil("a publish after the restart") { (try? await client.publish("config", "after")) != nil }
                try await waitUntil("the message after the restart") {
                    await recorder.contains(.message(channel: "config", payload: "after"))
                }

                let resync = await recorder.firstIndex(of: .subscribed(resync: true))
                let after = await recorder.firstIndex(of: .message(channel: "config", payload: "after"))
                #expect(resync != nil && after != nil && resync! < after!)
                #expect(await recorder.elements.filter { $0 == .subscribed(resync: false) }.count == 1)
                group.cancelAll()
            }
        }
    }

    /// A server that stops answering is found by the missing PONG: the subscriber drops the connection,
    /// and once the server answers again it is subscribed again with `.subscribed(resync: true)`.
    @Test func silentServerIsDetectedByPingAndResubscribed() async throws {
        let logs = InMemoryLogHandler.Store()
        let lost = { logs.entries.filter { $0.message == "redis subscription lost; reconnecting" }.count }
        try await withRedisClient { client, server async throws in
            var configuration = server.configuration()
            configuration.initialBackoff = .milliseconds(10)
            configuration.maxBackoff = .milliseconds(50)
            let subscriber = RedisSubscriber(
                configuration: configuration, channels: ["nodes"], pingInterval: .milliseconds(250),
                logger: logs.logger(label: "subscriber"))
            let recorder = EventRecorder<RedisPubSubEvent>()
            let resyncs = { await recorder.elements.filter { $0 == .subscribed(resync: true) }.count }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await subscriber.run() }
                group.addTask { await recorder.record(subscriber.events) }
                // A loaded machine may already have made it reconnect once; count from here.
                try await waitUntil("a subscription") { await !recorder.elements.isEmpty }

                let lostBefore = lost()
                try await server.pause()
                // The connection stays open but PINGs go unanswered.
                try await waitUntil("the subscriber to give up on the silent connection") { lost() > lostBefore }
                let resyncsBefore = await resyncs()
                try await server.resume()
                try await waitUntil("the resubscription") { await resyncs() > resyncsBefore }
                try await waitUntil("a message after the resubscription") {
                    try await client.publish("nodes", "back")
                    return await recorder.contains(.message(channel: "nodes", payload: "back"))
                }
                group.cancelAll()
            }
        }
    }

    /// Cancelling the subscriber's task ends `run()` and finishes its event stream.
    @Test func cancellationEndsRunAndFinishesEvents() async throws {
        try await withRedisServer { server async throws in
            let subscriber = RedisSubscriber(configuration: server.configuration(), channels: ["c"], logger: .forTesting())
            let recorder = EventRecorder<RedisPubSubEvent>()
            let run = Task { try await subscriber.run() }
            let record = Task { await recorder.record(subscriber.events) }
            try await waitUntil("the subscription") { await recorder.contains(.subscribed(resync: false)) }
            run.cancel()
            try await withTimeout(.seconds(10), "run() to return") { try await run.value }
            try await withTimeout(.seconds(10), "the event stream to finish") { await record.value }
        }
    }
}

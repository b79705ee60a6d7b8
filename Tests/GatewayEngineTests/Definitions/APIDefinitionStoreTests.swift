import GatewayCore
import GatewayTesting
import Logging
import Testing

@testable import GatewayEngine

@Suite struct APIDefinitionStoreTests {
    /// Put, list and delete; every change bumps the version and announces it on the events channel.
    @Test func changesBumpTheVersionAndAreAnnounced() async throws {
        try await withRedisClient { redis, server in
            let keys = EngineKeys(prefix: uniquePrefix())
            let store = APIDefinitionStore(redis: redis, keys: keys)
            let events = EngineEvents(configuration: server.configuration(), keys: keys, logger: .forTesting())
            let seen = Recorder<EngineEvent>()
            events.addHandler { seen.append($0) }
            try await withServices([{ try await events.run() }]) {
                try await waitUntil("subscribed") { seen.all.contains(.resync) }
                #expect(try await store.version().counter == 0)
                #expect(try await store.version().epoch == nil)
                #expect(try await store.put(makeAPI("a")) == 1)
                #expect(try await store.put(makeAPI("b")) == 2)
                #expect(try await store.put(makeAPI("b")) == 2, "an identical put changes nothing")
                var changed = makeAPI("b")
                changed.active = false
                #expect(try await store.put(changed) == 3)
                let listing = try await store.list()
                #expect(listing.version.counter == 3 && listing.version.epoch != nil)
                #expect(listing.definitions.map(\.id).sorted() == ["a", "b"])
                #expect(listing.definitions.first { $0.id == "b" }?.active == false)
                #expect(try await store.get(id: "a") == makeAPI("a"))
                #expect(try await store.delete(id: "a") == 4)
                #expect(try await store.delete(id: "a") == nil)
                #expect(try await store.get(id: "a") == nil)
                try await waitUntil("all four changes announced") {
                    seen.all.filter { if case .apisChanged = $0 { true } else { false } }.count == 4
                }
                #expect(seen.all.filter { $0 != .resync } == [1, 2, 3, 4].map { EngineEvent.apisChanged(version: $0) })
            }
        }
    }

    /// Invalid definitions and clashing routes are refused with problems naming the field.
    @Test func refusesInvalidAndClashingDefinitions() async throws {
        try await withRedisClient { redis, _ in
            let store = APIDefinitionStore(redis: redis, keys: EngineKeys(prefix: uniquePrefix()))
            var bad = makeAPI("bad")
            bad.targets = [.init(url: "ftp://x")]
            await #expect {
                try await store.put(bad)
            } throws: { error in
                guard case APIDefinitionStore.WriteError.invalid(let e) = error else { return false }
                return e.problems.map(\.key) == ["targets[0].url"]
            }
            try await store.put(makeAPI("first", path: "/shared"))
            await #expect {
                try await store.put(makeAPI("second", path: "/shared"))
            } throws: { error in
                guard case APIDefinitionStore.WriteError.invalid(let e) = error else { return false }
                return e.problems.map(\.key) == ["listen_path"] && e.problems[0].expected.contains("first")
            }
            try await store.put(makeAPI("second", path: "/shared", active: false))  // inactive: no clash
            #expect(try await store.version().counter == 2)
        }
    }

    /// An entry written by something else that does not parse is reported, not fatal.
    @Test func listReportsUnreadableEntries() async throws {
        try await withRedisClient { redis, _ in
            let keys = EngineKeys(prefix: uniquePrefix())
            let store = APIDefinitionStore(redis: redis, keys: keys)
            try await store.put(makeAPI("good"))
            try await redis.hset(keys.apis, fields: [("broken", "{\"id\": 1}")])
            let listing = try await store.list()
            #expect(listing.definitions.map(\.id) == ["good"])
            #expect(listing.unreadable.keys.sorted() == ["broken"])
        }
    }
}

@Suite struct RouteTableWatcherTests {
    /// A change made through the store reaches the holder through the event, well within 1 s (the
    /// periodic check is set to a minute so only the event can explain it).
    @Test func reloadsOnTheChangeEvent() async throws {
        try await withRedisClient { redis, server in
            let keys = EngineKeys(prefix: uniquePrefix())
            let store = APIDefinitionStore(redis: redis, keys: keys)
            try await store.put(makeAPI("a"))
            let holder = RouteTableHolder()
            let watcher = RouteTableWatcher(store: store, holder: holder, checkInterval: .seconds(60), logger: .forTesting())
            let events = EngineEvents(configuration: server.configuration(), keys: keys, logger: .forTesting())
            events.addHandler(watcher.handle)
            try await withServices([{ try await events.run() }, { try await watcher.run() }]) {
                try await waitUntil("first load") { holder.table.routes["a"] != nil }
                let versionBefore = holder.table.version
                let (_, elapsed) = try await timed {
                    try await store.put(makeAPI("b"))
                    try await waitUntil("b routed", timeout: .seconds(1), interval: .milliseconds(5)) {
                        holder.table.match(host: nil, path: "/b") != nil
                    }
                }
                #expect(elapsed < .seconds(1))
                #expect(holder.table.version != versionBefore)
                #expect(holder.snapshot.storeVersion?.counter == 2)
            }
        }
    }

    /// With no events at all (a lost message), the periodic version check still picks the change up.
    @Test func periodicCheckCatchesALostMessage() async throws {
        try await withRedisClient { redis, _ in
            let keys = EngineKeys(prefix: uniquePrefix())
            let store = APIDefinitionStore(redis: redis, keys: keys)
            let holder = RouteTableHolder()
            let watcher = RouteTableWatcher(store: store, holder: holder, checkInterval: .milliseconds(50), logger: .forTesting())
            try await withServices([{ try await watcher.run() }]) {
                try await waitUntil("first load") { holder.isLoaded }
                #expect(holder.table.routes.isEmpty)
                // Write as another engine would, but without publishing.
                let json = String(decoding: makeAPI("quiet").canonicalJSON(), as: UTF8.self)
                _ = try await redis.transaction([
                    RedisCommand("HSET", .string(keys.apis), "quiet", .string(json)),
                    RedisCommand("INCR", .string(keys.apisVersion)),
                ])
                try await waitUntil("quiet routed", timeout: .seconds(2)) { holder.table.routes["quiet"] != nil }
                #expect(holder.snapshot.storeVersion?.counter == 1)
            }
        }
    }

    /// While Redis is down the last-known table stays in use; when Redis is back, the watcher reloads.
    @Test func keepsTheLastKnownTableWhileRedisIsDown() async throws {
        try await withRedisClient { redis, server in
            let keys = EngineKeys(prefix: uniquePrefix())
            let store = APIDefinitionStore(redis: redis, keys: keys)
            try await store.put(makeAPI("a"))
            let holder = RouteTableHolder()
            let logs = InMemoryLogHandler.Store()
            let watcher = RouteTableWatcher(
                store: store, holder: holder, checkInterval: .milliseconds(50), logger: logs.logger(label: "watcher"))
            try await withServices([{ try await watcher.run() }]) {
                try await waitUntil("first load") { holder.table.routes["a"] != nil }
                let table = holder.table
                await server.stop()
                try await waitUntil("several failed checks") { watcher.stats.failures >= 3 }
                #expect(holder.table === table)
                #expect(holder.table.match(host: nil, path: "/a") != nil)
                let warnings = logs.entries.filter { $0.message.contains("last-known") }
                #expect(warnings.count == 1, "one warning per outage, not one per check")
                // The restarted server has no data (tests persist nothing): the store's truth is now empty.
                try await server.restart()
                try await waitUntil("the client reconnected and wrote") {
                    try await store.put(makeAPI("c"))
                    return true
                }
                try await waitUntil("reloaded after restart", timeout: .seconds(3)) { holder.table.routes["c"] != nil }
                #expect(holder.table.routes["a"] == nil)
            }
        }
    }
}

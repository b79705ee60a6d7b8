import Foundation
import GatewayCore
import GatewayTesting
import Logging
import Testing

@testable import GatewayEngine

@Suite struct APIKeyStoreTests {
    /// A created key is returned once in plain text; Redis holds only its hash; list shows ids and
    /// policies but never the key or its hash; revoke makes lookups fail at once on this engine.
    @Test func createLookupListRevoke() async throws {
        try await withRedisClient { redis, _ in
            let keys = EngineKeys(prefix: uniquePrefix())
            let store = APIKeyStore(redis: redis, keys: keys, logger: .forTesting())
            let rate = RateLimitPolicy(rate: 5, periodSeconds: 1, burst: 10)
            let (key, record) = try await store.create(APIKeyRequest(name: "mobile", allowedAPIs: ["orders"], rateLimit: rate))
            #expect(key.hasPrefix("gk_") && key.utf8.count == 46)
            #expect(key.utf8.dropFirst(3).allSatisfy(Base64URL.isAlphabet))
            let hash = APIKeyStore.hash(of: key)
            #expect(record.id == String(hash.prefix(12)))

            // Nothing in Redis contains the plain key.
            let stored = try await redis.send("KEYS", .string("\(keys.prefix):*")).array?.compactMap(\.string) ?? []
            #expect(stored.sorted() == [keys.apiKeyIndex, keys.apiKey(hash: hash)].sorted())
            for name in stored {
                let type = try await redis.send("TYPE", .string(name)).string
                let dump = type == "hash" ? "\(try await redis.hgetall(name))" : (try await redis.get(name) ?? "")
                #expect(!dump.contains(key))
                #expect(!dump.contains(String(key.dropFirst(3))))
            }

            guard case .valid(let found) = try await store.lookup(key) else {
                Issue.record("key not found")
                return
            }
            #expect(found == record)
            #expect(found.permits(api: "orders") && !found.permits(api: "billing"))
            #expect(found.rateLimit == rate)

            let listed = try await store.list()
            #expect(listed == [record])
            let listedJSON = String(decoding: try APIKeyRecord.encoder.encode(listed), as: UTF8.self)
            #expect(!listedJSON.contains(hash) && !listedJSON.contains(key))

            #expect(try await store.revoke(id: record.id))
            #expect(try await store.lookup(key) == .unknown)
            #expect(try await store.list().isEmpty)
            #expect(try await store.revoke(id: record.id) == false)
            #expect(try await redis.send("EXISTS", .string(keys.apiKey(hash: hash))).int == 0)
        }
    }

    /// Another engine that cached the key stops accepting it within 1 s of the revocation: through the
    /// `key_revoked` event, and also when that message is lost (the cache's TTL bounds it).
    @Test func revocationReachesOtherEnginesWithinOneSecond() async throws {
        try await withRedisServer { server in
            let keys = EngineKeys(prefix: uniquePrefix())
            let clients = (0..<3).map { _ in RedisClient(configuration: server.configuration(), logger: .forTesting()) }
            let admin = APIKeyStore(redis: clients[0], keys: keys, logger: .forTesting())
            let listening = APIKeyStore(redis: clients[1], keys: keys, logger: .forTesting())
            let deaf = APIKeyStore(redis: clients[2], keys: keys, logger: .forTesting())  // never gets events
            let events = EngineEvents(configuration: server.configuration(), keys: keys, logger: .forTesting())
            let subscribed = Recorder<EngineEvent>()
            events.addHandler(listening.handle)
            events.addHandler { subscribed.append($0) }
            try await withServices([{ try await events.run() }]) {
                try await waitUntil("subscribed") { subscribed.all.contains(.resync) }
                let (key, record) = try await admin.create(APIKeyRequest(name: "k"))
                // The creation event clears "unknown" answers; let it land before caching the key.
                try await waitUntil("creation announced") { subscribed.all.contains(.keyCreated(hashPrefix: APIKeyStore.hash(of: key))) }
                for store in [listening, deaf] {
                    guard case .valid = try await store.lookup(key) else {
                        Issue.record("key should be valid before revocation")
                        return
                    }
                }
                #expect(listening.cacheStats.size == 1 && deaf.cacheStats.size == 1)

                let revokedAt = ContinuousClock.now
                try await admin.revoke(id: record.id)
                // The event, not a TTL, drops the cached entry: nothing looks the key up meanwhile.
                try await waitUntil("the event reached the listening engine", timeout: .seconds(1), interval: .milliseconds(5)) {
                    listening.cacheStats.size == 0
                }
                #expect(try await listening.lookup(key) == .unknown)
                let viaEvent = ContinuousClock.now - revokedAt
                #expect(deaf.cacheStats.size == 1, "the deaf engine still holds its cached answer")
                try await waitUntil("deaf engine refuses", timeout: .seconds(1), interval: .milliseconds(20)) {
                    try await deaf.lookup(key) == .unknown
                }
                let viaTTL = ContinuousClock.now - revokedAt
                #expect(viaEvent < .seconds(1))
                #expect(viaTTL < .seconds(1))
                #expect(subscribed.all.contains(.keyRevoked(hashPrefix: APIKeyStore.hash(of: key))))
            }
            for client in clients { await client.shutdown() }
        }
    }

    /// Redis unreachable: a lookup that misses the cache throws `unavailable` (503), never "unknown";
    /// malformed keys are refused without asking Redis at all.
    @Test func redisDownIsAnErrorNotARefusal() async throws {
        try await withRedisClient { redis, server in
            let store = APIKeyStore(redis: redis, keys: EngineKeys(prefix: uniquePrefix()), logger: .forTesting())
            let (key, _) = try await store.create(APIKeyRequest(name: "k"))
            await server.stop()
            let other = APIKeyStore.generateKey()
            await #expect {
                _ = try await store.lookup(other)
            } throws: { error in
                guard case APIKeyLookupError.unavailable(let redisError) = error else { return false }
                return redisError.isConnectivity
            }
            #expect(try await store.lookup("not-a-key") == .unknown)
            #expect(try await store.lookup("gk_" + String(repeating: "A", count: 10)) == .unknown)
            _ = key
        }
    }

    /// A key past its expiry is reported as expired; Redis also drops the record at that moment.
    @Test func expiredKeysAreReportedAndDropped() async throws {
        try await withRedisClient { redis, _ in
            let clock = ManualClock()
            let keys = EngineKeys(prefix: uniquePrefix())
            let store = APIKeyStore(
                redis: redis, keys: keys, now: clock.instantSource, wallClock: clock.dateSource, logger: .forTesting())
            await #expect(throws: APIKeyStore.WriteError.self) {
                _ = try await store.create(APIKeyRequest(name: "past", expiresAt: clock.date.addingTimeInterval(-1)))
            }
            // The injected clock starts at the real time, so Redis keeps this record for a day.
            let (key, record) = try await store.create(APIKeyRequest(name: "k", expiresAt: clock.date.addingTimeInterval(86_400)))
            #expect(try await store.lookup(key) == .valid(record))
            clock.advance(by: .seconds(86_401))  // the expiry was rounded up to a whole second
            #expect(try await store.lookup(key) == .expired(record))

            let real = APIKeyStore(redis: redis, keys: keys, logger: .forTesting())
            let (short, _) = try await real.create(APIKeyRequest(name: "short", expiresAt: Date().addingTimeInterval(0.2)))
            let hash = APIKeyStore.hash(of: short)
            #expect(try await redis.send("PTTL", .string(keys.apiKey(hash: hash))).int ?? -1 > 0)
            try await waitUntil("redis expired the record", timeout: .seconds(2)) {
                try await redis.send("EXISTS", .string(keys.apiKey(hash: hash))).int == 0
            }
        }
    }

    @Test func refusesInvalidRequests() async throws {
        try await withRedisClient { redis, _ in
            let store = APIKeyStore(redis: redis, keys: EngineKeys(prefix: uniquePrefix()), logger: .forTesting())
            await #expect {
                _ = try await store.create(APIKeyRequest(name: "", allowedAPIs: ["Not An Id"], rateLimit: .init(rate: 0, periodSeconds: 1, burst: 1)))
            } throws: { error in
                guard case APIKeyStore.WriteError.invalid(let problems) = error else { return false }
                return problems.map(\.key) == ["name", "allowed_apis[0]", "rate_limit"]
            }
        }
    }
}

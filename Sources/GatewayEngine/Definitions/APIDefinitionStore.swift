import Foundation
import GatewayCore

/// The cluster's API definitions in Redis, the source of truth every engine serves from.
///
/// Definitions live in the hash ``EngineKeys/apis`` (id → JSON) with a version counter
/// ``EngineKeys/apisVersion`` and an epoch ``EngineKeys/apisEpoch`` (a random id set with the first
/// write, so a Redis that restarted empty and counted up again is not mistaken for the old one). Every change is one Lua script that writes the hash, bumps the counter
/// and publishes `{"type":"apis_changed","version":N}` on the events channel, so a reader never sees a
/// new definition under an old version. Writing an identical definition changes nothing.
struct APIDefinitionStore: Sendable {
    let redis: RedisClient
    let keys: EngineKeys

    init(redis: RedisClient, keys: EngineKeys) {
        self.redis = redis
        self.keys = keys
    }

    /// The version of the stored definitions: a counter bumped by every change, and the epoch it counts in.
    struct Version: Sendable, Hashable, CustomStringConvertible {
        var counter: Int64
        var epoch: String?

        init(counter: Int64, epoch: String?) {
            self.counter = counter
            self.epoch = epoch
        }

        var description: String { "\(counter)@\(epoch ?? "-")" }
    }

    /// What ``list()`` read, at one version.
    struct Listing: Sendable {
        var version: Version
        var definitions: [APIDefinition]
        /// Ids whose JSON could not be read, with the reason (written by something other than this store).
        var unreadable: [String: String]
    }

    /// Why a write was refused.
    enum WriteError: Error, Sendable, CustomStringConvertible {
        case invalid(APIDefinitionError)
        case redis(RedisError)

        var description: String {
            switch self {
            case .invalid(let error): return error.description
            case .redis(let error): return error.description
            }
        }
    }

    /// Validates and stores a definition (creating or replacing it by id) and returns the new version.
    ///
    /// Besides the definition's own checks, a definition whose host and listen path an active API with
    /// another id already claims is refused. (Two engines writing clashing definitions at the same
    /// moment can both succeed; the route table then keeps the lower id and reports the conflict.)
    @discardableResult
    func put(_ definition: APIDefinition) async throws(WriteError) -> Int64 {
        do {
            _ = try definition.validated()
        } catch {
            throw .invalid(error)
        }
        let existing: Listing
        do {
            existing = try await list()
        } catch {
            throw .redis(error)
        }
        if definition.active {
            let others = existing.definitions.filter { $0.id != definition.id }
            let table = RouteTable(definitions: others + [definition])
            let clashes = table.conflicts.filter { $0.hasPrefix("\(definition.id):") }
            if !clashes.isEmpty {
                let problems = clashes.map {
                    ConfigProblem(key: "listen_path", value: definition.listenPath ?? "/", expected: "a route no other API uses (\($0))")
                }
                throw .invalid(APIDefinitionError(problems: problems))
            }
        }
        let json = String(decoding: definition.canonicalJSON(), as: UTF8.self)
        let reply: RedisValue
        do {
            reply = try await redis.evalScript(
                Self.putScript, keys: [keys.apis, keys.apisVersion, keys.apisEpoch],
                arguments: [.string(definition.id), .string(json), .string(keys.events), .string(Self.newEpoch())])
        } catch {
            throw .redis(error)
        }
        guard let version = reply.int else { throw .redis(.unexpectedReply(command: "EVALSHA", reply: "\(reply)")) }
        return version
    }

    /// Removes a definition; returns the new version, or nil if there was no such id.
    @discardableResult
    func delete(id: String) async throws(RedisError) -> Int64? {
        let reply = try await redis.evalScript(
            Self.deleteScript, keys: [keys.apis, keys.apisVersion, keys.apisEpoch],
            arguments: [.string(id), .string(keys.events), .string(Self.newEpoch())])
        guard let version = reply.int else { return nil }
        return version
    }

    func get(id: String) async throws(RedisError) -> APIDefinition? {
        let reply = try await redis.send("HGET", .string(keys.apis), .string(id))
        guard let json = reply.string else { return nil }
        return try? APIDefinition.parse(json: Array(json.utf8))
    }

    /// The version alone: a cheap check for whether anything changed.
    func version() async throws(RedisError) -> Version {
        let reply = try await redis.send("MGET", .string(keys.apisVersion), .string(keys.apisEpoch))
        guard let values = reply.array, values.count == 2 else { throw .unexpectedReply(command: "MGET", reply: "\(reply)") }
        return Version(counter: values[0].int ?? 0, epoch: values[1].string)
    }

    /// Every definition and the version they belong to, read in one transaction.
    func list() async throws(RedisError) -> Listing {
        let replies = try await redis.transaction([
            RedisCommand("MGET", .string(keys.apisVersion), .string(keys.apisEpoch)),
            RedisCommand("HGETALL", .string(keys.apis)),
        ])
        guard replies.count == 2, let counters = replies[0].array, counters.count == 2, let items = replies[1].array else {
            throw .unexpectedReply(command: "EXEC", reply: "\(replies)")
        }
        let version = Version(counter: counters[0].int ?? 0, epoch: counters[1].string)
        var definitions: [APIDefinition] = []
        var unreadable: [String: String] = [:]
        var i = 0
        while i + 1 < items.count {
            let id = items[i].string ?? ""
            let json = items[i + 1].string ?? ""
            do {
                let definition = try APIDefinition.parse(json: Array(json.utf8))
                if definition.id == id {
                    definitions.append(definition)
                } else {
                    unreadable[id] = "stored under \(id) but its id is \(definition.id)"
                }
            } catch {
                unreadable[id] = error.description
            }
            i += 2
        }
        return Listing(version: version, definitions: definitions, unreadable: unreadable)
    }

    static func newEpoch() -> String {
        String(UInt64.random(in: 1...UInt64.max), radix: 36)
    }

    /// KEYS: apis hash, version counter, epoch. ARGV: id, JSON, events channel, new epoch. Returns the version.
    static let putScript = RedisScript(
        """
        if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
          return tonumber(redis.call('GET', KEYS[2]) or '0')
        end
        redis.call('SET', KEYS[3], ARGV[4], 'NX')
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        local v = redis.call('INCR', KEYS[2])
        redis.call('PUBLISH', ARGV[3], '{"type":"apis_changed","version":' .. v .. ',"id":' .. cjson.encode(ARGV[1]) .. '}')
        return v
        """)

    /// KEYS: apis hash, version counter, epoch. ARGV: id, events channel, new epoch. Returns the
    /// version, or nil if absent.
    static let deleteScript = RedisScript(
        """
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
          return false
        end
        redis.call('SET', KEYS[3], ARGV[3], 'NX')
        local v = redis.call('INCR', KEYS[2])
        redis.call('PUBLISH', ARGV[2], '{"type":"apis_changed","version":' .. v .. ',"id":' .. cjson.encode(ARGV[1]) .. '}')
        return v
        """)
}

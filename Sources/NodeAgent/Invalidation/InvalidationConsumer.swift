import GatewayCore
import Logging

/// Applies the cluster's cache invalidations to the local engine, in stream order, never skipping one.
///
/// It reads the stream from the last applied id; for each entry it calls the engine's purge endpoint and
/// only once the engine has applied it records the id (state file first, then the node record through
/// ``AgentCore``). While the engine is down the entry stays pending and is retried with backoff. When
/// entries it never applied are gone from the stream (trimmed, or Redis lost the stream) it purges the
/// whole cache and says so: it never leaves a cache it cannot prove fresh.
struct InvalidationConsumer: Sendable {
    let redis: RedisClient
    let stream: String
    let stateFile: InvalidationStateFile
    let core: AgentCore
    let status: AgentStatusStore
    /// How long one blocking read waits.
    let block: Duration
    /// Backoff between retries, both for Redis and for the engine.
    let backoff: Backoff
    let logger: Logger
    /// Entries read per batch.
    var batchSize = 100

    /// The last applied id from the state file; nil (with a warning) when there is none or it is unusable.
    func loadCursor() async -> RedisStreamID? {
        do {
            let id = try await stateFile.load()
            if id == nil {
                logger.notice(
                    "no invalidation state file: the engine cache will be purged once to start from a known point",
                    metadata: ["state.file": "\(stateFile.path)"])
            }
            return id
        } catch {
            logger.warning(
                "invalidation state file unusable: the engine cache will be purged once to start from a known point",
                metadata: ["state.file": "\(stateFile.path)", "error": "\(error)"])
            return nil
        }
    }

    /// Runs until the task is cancelled.
    ///
    /// - Parameter initial: where to start (``loadCursor()``'s answer).
    func run(startingAfter initial: RedisStreamID?) async {
        var cursor = initial
        var failures = 0
        while !Task.isCancelled {
            do {
                let look = try await self.look(after: cursor ?? .zero)
                if failures > 0 {
                    logger.info("invalidation stream readable again", metadata: ["invalidation.last": "\(cursor ?? .zero)"])
                }
                failures = 0
                switch InvalidationCursor.decide(
                    lastApplied: cursor, info: look.info, entries: look.entries, lastAppliedPresent: look.lastPresent)
                {
                case .upToDate:
                    status.invalidationsPending([])
                    try await waitForEntries(after: cursor ?? .zero)
                case .apply(let entries):
                    status.invalidationsPending(entries)
                    for (index, entry) in entries.enumerated() {
                        guard let id = RedisStreamID(entry.id), await apply(entry) else { return }
                        cursor = id
                        await record(id, next: index + 1 < entries.count ? entries[index + 1] : nil, fullPurge: false)
                    }
                case .purgeAll(let reason, let resumeAfter):
                    logger.warning(
                        "purging the whole engine cache: \(reason)",
                        metadata: ["invalidation.last": "\(cursor.map { "\($0)" } ?? "none")", "invalidation.resume": "\(resumeAfter)"])
                    guard await purgeUntilApplied(.all, entryID: nil) else { return }
                    cursor = resumeAfter
                    await record(resumeAfter, next: nil, fullPurge: true)
                }
            } catch {
                guard !Task.isCancelled else { return }
                failures += 1
                if failures == 1 {
                    logger.warning("cannot read the invalidation stream; retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: backoff.delay(afterFailures: failures))
            }
        }
    }

    // MARK: Reading

    struct Look: Sendable {
        var info: RedisStreamInfo?
        var entries: [RedisStreamEntry]
        var lastPresent: Bool
    }

    /// One consistent look at the stream: its trim state, the entries after `after`, and whether the
    /// entry `after` itself is still there, all in one transaction.
    func look(after: RedisStreamID) async throws(RedisError) -> Look {
        let id = RedisArgument.string(after.description)
        let replies = try await redis.transaction([
            RedisCommand("XINFO", "STREAM", .string(stream)),
            RedisCommand("XREAD", "COUNT", .int(batchSize), "STREAMS", .string(stream), id),
            RedisCommand("XRANGE", .string(stream), id, id, "COUNT", 1),
        ])
        guard replies.count == 3 else { throw .unexpectedReply(command: "EXEC", reply: "\(replies)") }
        var info: RedisStreamInfo?
        if case .error(let message) = replies[0] {
            let error = RedisError.server(command: "XINFO", message: message)
            guard RedisClient.isNoSuchKey(error) else { throw error }
        } else {
            info = try RedisStreamInfo(reply: replies[0])
        }
        let entries = try RedisClient.streamEntries(fromRead: try replies[1].throwingServerError(command: "XREAD"))
        let present = try RedisClient.streamEntries(fromRange: try replies[2].throwingServerError(command: "XRANGE"))
        return Look(info: info, entries: entries, lastPresent: !present.isEmpty)
    }

    /// Blocks until the stream has something after `after`, or the block time passes.
    func waitForEntries(after: RedisStreamID) async throws(RedisError) {
        let command = RedisCommand(
            "XREAD", "BLOCK", .int(Int(block.nanoseconds / 1_000_000)), "COUNT", 1, "STREAMS", .string(stream),
            .string(after.description))
        try await redis.sendBlocking(command, timeout: block + redis.configuration.commandTimeout)
    }

    // MARK: Applying

    /// Applies one entry; false only when cancelled before the engine applied it.
    func apply(_ entry: RedisStreamEntry) async -> Bool {
        guard let scope = InvalidationScope(entry: entry) else {
            logger.warning(
                "malformed invalidation entry; purging the whole engine cache in its place",
                metadata: ["invalidation.id": "\(entry.id)", "invalidation.fields": "\(entry.fields.map { "\($0.0)=\($0.1)" })"])
            return await purgeUntilApplied(.all, entryID: entry.id)
        }
        return await purgeUntilApplied(scope, entryID: entry.id)
    }

    /// Calls the engine until it applies `scope`; false only when cancelled first.
    ///
    /// A scope the engine rejects as malformed is widened to a full purge rather than skipped.
    func purgeUntilApplied(_ scope: InvalidationScope, entryID: String?) async -> Bool {
        var scope = scope
        var failures = 0
        while !Task.isCancelled {
            let engine = EngineClient(settings: await core.engine)
            switch await engine.purge(scope) {
            case .applied(let purged):
                if failures > 0 {
                    logger.info("engine applied the pending invalidation", metadata: ["invalidation.id": "\(entryID ?? "-")"])
                }
                logger.debug(
                    "invalidation applied",
                    metadata: ["invalidation.id": "\(entryID ?? "-")", "invalidation.scope": "\(scope)", "cache.purged": "\(purged)"])
                return true
            case .rejected(let status, let message) where scope != .all:
                logger.warning(
                    "engine rejected the invalidation; purging the whole engine cache in its place",
                    metadata: [
                        "invalidation.id": "\(entryID ?? "-")", "invalidation.scope": "\(scope)", "http.status": "\(status)",
                        "error": "\(message)",
                    ])
                scope = .all
            case .rejected(_, let reason), .failed(let reason):
                failures += 1
                status.invalidationStuck("engine did not apply invalidation \(entryID ?? "(full purge)"): \(reason)")
                if failures == 1 {
                    logger.warning(
                        "engine did not apply the invalidation; keeping it pending and retrying",
                        metadata: ["invalidation.id": "\(entryID ?? "-")", "invalidation.scope": "\(scope)", "error": "\(reason)"])
                }
                do {
                    try await Task.sleep(for: backoff.delay(afterFailures: failures))
                } catch {
                    return false
                }
            }
        }
        return false
    }

    /// Records `id` as applied: in the state file, then in the node record.
    private func record(_ id: RedisStreamID, next: RedisStreamEntry?, fullPurge: Bool) async {
        do {
            try await stateFile.save(id)
        } catch {
            // The engine has applied it; a restart would apply it again, which is harmless.
            logger.error("cannot record the applied invalidation in the state file", metadata: ["error": "\(error)"])
        }
        status.invalidationApplied(id, next: next, fullPurge: fullPurge)
        await core.invalidationApplied(id)
    }
}

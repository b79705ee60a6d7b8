import GatewayCore

/// Decides, from one consistent look at the stream, what the consumer does next: apply entries, wait for
/// more, or purge the whole cache because entries it never applied are gone.
///
/// The look is taken atomically (`MULTI` / `XINFO STREAM` / `XREAD` / `EXEC`), so nothing can be trimmed
/// between the check and the read.
enum InvalidationCursor {
    enum Decision: Sendable, Equatable {
        /// Nothing new: block until something arrives.
        case upToDate
        /// Apply these entries, in order.
        case apply([RedisStreamEntry])
        /// The cache cannot be proven fresh: purge everything, then continue after `resumeAfter`.
        case purgeAll(reason: String, resumeAfter: RedisStreamID)
    }

    /// - Parameters:
    ///   - lastApplied: the id of the last entry applied, or nil when the agent has no record of any
    ///     (first start, or its state file was lost).
    ///   - info: `XINFO STREAM`, nil when the stream does not exist.
    ///   - entries: what `XREAD` returned after `lastApplied` in the same transaction.
    ///   - lastAppliedPresent: whether the entry `lastApplied` is still in the stream (only consulted when
    ///     Redis is older than 7 and does not report the greatest deleted id).
    static func decide(
        lastApplied: RedisStreamID?, info: RedisStreamInfo?, entries: [RedisStreamEntry], lastAppliedPresent: Bool
    ) -> Decision {
        guard let last = lastApplied else {
            return .purgeAll(
                reason: "no record of which invalidations this engine has applied",
                resumeAfter: info?.lastGeneratedID ?? .zero)
        }
        guard let info else {
            // The stream is gone (Redis lost its data, or someone deleted it): what was added after our
            // last id and before the loss cannot be known.
            return last == .zero ? .upToDate : .purgeAll(reason: "the invalidation stream is gone", resumeAfter: .zero)
        }
        if last > info.lastGeneratedID {
            // Our position is ahead of everything the stream ever held: it was recreated.
            return .purgeAll(reason: "the invalidation stream was recreated", resumeAfter: info.lastGeneratedID)
        }
        if let maxDeleted = info.maxDeletedEntryID {
            if maxDeleted > last {
                return .purgeAll(
                    reason: "invalidations after \(last) were trimmed before they were applied", resumeAfter: info.lastGeneratedID)
            }
        } else if last != .zero, let first = info.firstEntryID, first > last, !lastAppliedPresent {
            // Redis < 7: our entry was trimmed and the oldest one left is newer; entries in between may
            // have gone too, so assume they did.
            return .purgeAll(
                reason: "invalidations after \(last) may have been trimmed before they were applied",
                resumeAfter: info.lastGeneratedID)
        }
        return entries.isEmpty ? .upToDate : .apply(entries)
    }
}

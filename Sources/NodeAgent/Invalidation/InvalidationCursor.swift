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
    ///   - lastAppliedPresent: whether the entry `lastApplied` is still in the stream.
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
        if let reason = lossReason(last: last, info: info, lastPresent: lastAppliedPresent) {
            return .purgeAll(reason: reason, resumeAfter: info.lastGeneratedID)
        }
        return entries.isEmpty ? .upToDate : .apply(entries)
    }

    /// Why entries after `last` may be gone unapplied, or nil when none can be.
    ///
    /// Trimming (`MAXLEN`, `XTRIM`) removes entries from the head only, and Redis 7's
    /// `max-deleted-entry-id` covers `XDEL` (but not trimming). So:
    /// - an `XDEL` of anything after `last` is a loss;
    /// - while `last` itself is still there, nothing after it was trimmed;
    /// - once `last` was trimmed, the entries right after it may have been too (the stream does not say
    ///   which were there), so the oldest entry left being newer than `last` is treated as a loss, as is an
    ///   empty stream that had entries after `last`;
    /// - from the very start (`0-0`), more entries ever added than are left means some went unread.
    static func lossReason(last: RedisStreamID, info: RedisStreamInfo, lastPresent: Bool) -> String? {
        if let maxDeleted = info.maxDeletedEntryID, maxDeleted > last {
            return "invalidations after \(last) were deleted before they were applied"
        }
        if last == .zero {
            guard let added = info.entriesAdded, added > info.length else { return nil }
            return "\(added - info.length) invalidations were trimmed before they were applied"
        }
        if lastPresent { return nil }
        if let first = info.firstEntryID {
            return first > last ? "invalidations after \(last) were trimmed before they were applied" : nil
        }
        return info.lastGeneratedID > last ? "invalidations after \(last) were trimmed before they were applied" : nil
    }
}

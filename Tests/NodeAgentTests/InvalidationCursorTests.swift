import GatewayCore
import Testing

@testable import NodeAgent

/// The consumer's decision from one look at the stream, without Redis.
@Suite struct InvalidationCursorTests {
    func id(_ text: String) -> RedisStreamID { RedisStreamID(text)! }
    func entry(_ text: String) -> RedisStreamEntry { RedisStreamEntry(id: text, fields: [("scope", "all")]) }

    /// New entries after the last applied one, nothing deleted: apply them in order.
    @Test func newEntriesAreAppliedInOrder() {
        let info = RedisStreamInfo(length: 3, lastGeneratedID: id("30-0"), maxDeletedEntryID: .zero, firstEntryID: id("10-0"))
        let decision = InvalidationCursor.decide(
            lastApplied: id("10-0"), info: info, entries: [entry("20-0"), entry("30-0")], lastAppliedPresent: true)
        #expect(decision == .apply([entry("20-0"), entry("30-0")]))
    }

    /// Caught up: nothing to do but wait.
    @Test func caughtUpWaits() {
        let info = RedisStreamInfo(length: 1, lastGeneratedID: id("10-0"), maxDeletedEntryID: .zero, firstEntryID: id("10-0"))
        #expect(InvalidationCursor.decide(lastApplied: id("10-0"), info: info, entries: [], lastAppliedPresent: true) == .upToDate)
    }

    /// Trimming stops before the last applied entry: nothing after it can be gone.
    @Test func trimmingBeforeTheLastAppliedEntryIsHarmless() {
        let info = RedisStreamInfo(
            length: 2, lastGeneratedID: id("30-0"), maxDeletedEntryID: .zero, entriesAdded: 3, firstEntryID: id("20-0"))
        let decision = InvalidationCursor.decide(lastApplied: id("20-0"), info: info, entries: [entry("30-0")], lastAppliedPresent: true)
        #expect(decision == .apply([entry("30-0")]))
    }

    /// The last applied entry was trimmed and the oldest left is newer: what lay between may be gone, so
    /// purge everything and resume at the newest id.
    @Test func trimmedUnappliedEntriesForceAFullPurge() {
        let info = RedisStreamInfo(length: 1, lastGeneratedID: id("50-0"), maxDeletedEntryID: .zero, firstEntryID: id("50-0"))
        let decision = InvalidationCursor.decide(lastApplied: id("10-0"), info: info, entries: [entry("50-0")], lastAppliedPresent: false)
        guard case .purgeAll(_, let resume) = decision else {
            Issue.record("expected a full purge, got \(decision)")
            return
        }
        #expect(resume == id("50-0"))
        let emptied = RedisStreamInfo(length: 0, lastGeneratedID: id("50-0"), maxDeletedEntryID: .zero)
        let all = InvalidationCursor.decide(lastApplied: id("10-0"), info: emptied, entries: [], lastAppliedPresent: false)
        #expect(all == .purgeAll(reason: "invalidations after 10-0 were trimmed before they were applied", resumeAfter: id("50-0")))
    }

    /// An entry after the last applied one removed with XDEL is a loss too; the last one itself removed is not.
    @Test func deletedEntriesAfterTheLastAppliedForceAFullPurge() {
        let deletedAfter = RedisStreamInfo(length: 2, lastGeneratedID: id("50-0"), maxDeletedEntryID: id("40-0"), firstEntryID: id("10-0"))
        let lost = InvalidationCursor.decide(lastApplied: id("10-0"), info: deletedAfter, entries: [entry("50-0")], lastAppliedPresent: true)
        #expect(lost == .purgeAll(reason: "invalidations after 10-0 were deleted before they were applied", resumeAfter: id("50-0")))
        let deletedItself = RedisStreamInfo(length: 2, lastGeneratedID: id("50-0"), maxDeletedEntryID: id("20-0"), firstEntryID: id("10-0"))
        let kept = InvalidationCursor.decide(lastApplied: id("20-0"), info: deletedItself, entries: [entry("50-0")], lastAppliedPresent: false)
        #expect(kept == .apply([entry("50-0")]))
    }

    /// From the very start, entries trimmed before they were read are detected by the count of entries
    /// ever added.
    @Test func fromTheStartTrimmedEntriesAreCounted() {
        let trimmed = RedisStreamInfo(length: 2, lastGeneratedID: id("50-0"), maxDeletedEntryID: .zero, entriesAdded: 5, firstEntryID: id("40-0"))
        let lost = InvalidationCursor.decide(lastApplied: .zero, info: trimmed, entries: [entry("40-0"), entry("50-0")], lastAppliedPresent: false)
        #expect(lost == .purgeAll(reason: "3 invalidations were trimmed before they were applied", resumeAfter: id("50-0")))
        let whole = RedisStreamInfo(length: 2, lastGeneratedID: id("50-0"), maxDeletedEntryID: .zero, entriesAdded: 2, firstEntryID: id("40-0"))
        let kept = InvalidationCursor.decide(lastApplied: .zero, info: whole, entries: [entry("40-0"), entry("50-0")], lastAppliedPresent: false)
        #expect(kept == .apply([entry("40-0"), entry("50-0")]))
    }

    /// Redis older than 7 (no deleted-id watermark) gets the same answer from the first entry left.
    @Test func withoutWatermarkAVanishedLastIdForcesAFullPurge() {
        let info = RedisStreamInfo(length: 1, lastGeneratedID: id("50-0"), firstEntryID: id("50-0"))
        let lost = InvalidationCursor.decide(lastApplied: id("10-0"), info: info, entries: [entry("50-0")], lastAppliedPresent: false)
        #expect(lost == .purgeAll(reason: "invalidations after 10-0 were trimmed before they were applied", resumeAfter: id("50-0")))
        let kept = RedisStreamInfo(length: 2, lastGeneratedID: id("50-0"), firstEntryID: id("10-0"))
        let decision = InvalidationCursor.decide(lastApplied: id("10-0"), info: kept, entries: [entry("50-0")], lastAppliedPresent: true)
        #expect(decision == .apply([entry("50-0")]))
    }

    /// No state file: the cache cannot be proven fresh, so purge once and start at the stream's end.
    @Test func noRecordOfAppliedEntriesPurgesOnce() {
        let info = RedisStreamInfo(length: 2, lastGeneratedID: id("30-0"), maxDeletedEntryID: .zero, firstEntryID: id("20-0"))
        #expect(
            InvalidationCursor.decide(lastApplied: nil, info: info, entries: [entry("20-0")], lastAppliedPresent: false)
                == .purgeAll(reason: "no record of which invalidations this engine has applied", resumeAfter: id("30-0")))
        #expect(
            InvalidationCursor.decide(lastApplied: nil, info: nil, entries: [], lastAppliedPresent: false)
                == .purgeAll(reason: "no record of which invalidations this engine has applied", resumeAfter: .zero))
    }

    /// The stream vanished (Redis lost its data) after entries were applied: purge and start over at zero.
    @Test func vanishedStreamForcesAFullPurge() {
        #expect(
            InvalidationCursor.decide(lastApplied: id("10-0"), info: nil, entries: [], lastAppliedPresent: false)
                == .purgeAll(reason: "the invalidation stream is gone", resumeAfter: .zero))
        #expect(InvalidationCursor.decide(lastApplied: .zero, info: nil, entries: [], lastAppliedPresent: false) == .upToDate)
    }

    /// A position ahead of everything the stream ever held means it was recreated.
    @Test func positionAheadOfTheStreamForcesAFullPurge() {
        let info = RedisStreamInfo(length: 1, lastGeneratedID: id("5-0"), maxDeletedEntryID: .zero, firstEntryID: id("5-0"))
        let decision = InvalidationCursor.decide(lastApplied: id("10-0"), info: info, entries: [], lastAppliedPresent: false)
        #expect(decision == .purgeAll(reason: "the invalidation stream was recreated", resumeAfter: id("5-0")))
    }
}

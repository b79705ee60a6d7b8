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

    /// Trimming that removed only entries already applied loses nothing.
    @Test func trimmingOfAppliedEntriesIsHarmless() {
        let info = RedisStreamInfo(length: 1, lastGeneratedID: id("30-0"), maxDeletedEntryID: id("20-0"), firstEntryID: id("30-0"))
        let decision = InvalidationCursor.decide(lastApplied: id("20-0"), info: info, entries: [entry("30-0")], lastAppliedPresent: false)
        #expect(decision == .apply([entry("30-0")]))
    }

    /// Entries after the last applied one were trimmed: purge everything and resume at the newest id.
    @Test func trimmedUnappliedEntriesForceAFullPurge() {
        let info = RedisStreamInfo(length: 1, lastGeneratedID: id("50-0"), maxDeletedEntryID: id("40-0"), firstEntryID: id("50-0"))
        let decision = InvalidationCursor.decide(lastApplied: id("10-0"), info: info, entries: [entry("50-0")], lastAppliedPresent: false)
        guard case .purgeAll(_, let resume) = decision else {
            Issue.record("expected a full purge, got \(decision)")
            return
        }
        #expect(resume == id("50-0"))
    }

    /// Redis older than 7 (no deleted-id watermark): a vanished last id with newer entries left is treated
    /// as a loss.
    @Test func withoutWatermarkAVanishedLastIdForcesAFullPurge() {
        let info = RedisStreamInfo(length: 1, lastGeneratedID: id("50-0"), firstEntryID: id("50-0"))
        let lost = InvalidationCursor.decide(lastApplied: id("10-0"), info: info, entries: [entry("50-0")], lastAppliedPresent: false)
        #expect(lost == .purgeAll(reason: lostReason(lost), resumeAfter: id("50-0")))
        let kept = RedisStreamInfo(length: 2, lastGeneratedID: id("50-0"), firstEntryID: id("10-0"))
        #expect(
            InvalidationCursor.decide(lastApplied: id("10-0"), info: kept, entries: [entry("50-0")], lastAppliedPresent: true)
                == .apply([entry("50-0")]))
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

    private func lostReason(_ decision: InvalidationCursor.Decision) -> String {
        if case .purgeAll(let reason, _) = decision { return reason }
        return ""
    }
}

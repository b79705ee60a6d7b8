import Testing

@testable import GatewayCore

@Suite struct RequestIDTests {
    @Test func generatedIdsAreFifteenURLSafeCharactersUniqueAndInOrder() {
        let ids = (0..<5_000).map { _ in RequestID.generate() }
        let allowed = Set(RequestID.alphabet)
        for id in ids {
            #expect(id.utf8.count == RequestID.generatedLength)
            #expect(id.utf8.allSatisfy { allowed.contains($0) })
        }
        #expect(Set(ids).count == ids.count)
        // One process's ids share a prefix and sort in the order they were made (the alphabet is in
        // ASCII order; the counter starts below 2^47, so 5,000 ids do not wrap its 48 bits).
        #expect(Set(ids.map { $0.prefix(7) }).count == 1)
        #expect(ids == ids.sorted())
        #expect(RequestID.alphabet == RequestID.alphabet.sorted() && Set(RequestID.alphabet).count == 64)
    }

    @Test func aClientsSaneIdIsKeptAndAnythingElseReplaced() {
        #expect(RequestID.accept("abc-123") == "abc-123")
        let long = String(repeating: "a", count: 128)
        #expect(RequestID.accept(long) == long)
        for bad in [nil, "", String(repeating: "a", count: 129), "has space", "tab\there", "é"] {
            let id = RequestID.accept(bad)
            #expect(id != bad && id.utf8.count == RequestID.generatedLength)
        }
    }
}

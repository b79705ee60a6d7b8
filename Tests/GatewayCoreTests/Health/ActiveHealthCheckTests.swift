import Testing

import GatewayCore

@Suite struct ActiveHealthCheckTests {
    /// A healthy node turns unhealthy only after `fall` failures in a row.
    @Test func fallsAfterConsecutiveFailures() {
        var check = ActiveHealthCheck(rise: 2, fall: 3)
        let r1 = check.record(passed: false)
        #expect(r1 == .none)
        let r2 = check.record(passed: false)
        #expect(r2 == .none)
        let r3 = check.record(passed: true)
        #expect(r3 == .none)  // resets the count
        let r4 = check.record(passed: false)
        #expect(r4 == .none)
        let r5 = check.record(passed: false)
        #expect(r5 == .none)
        let r6 = check.record(passed: false)
        #expect(r6 == .becameUnhealthy)
        #expect(!check.isHealthy)
    }

    /// An unhealthy node turns healthy only after `rise` passes in a row.
    @Test func risesAfterConsecutivePasses() {
        var check = ActiveHealthCheck(rise: 2, fall: 1, healthy: false)
        let r7 = check.record(passed: true)
        #expect(r7 == .none)
        let r8 = check.record(passed: false)
        #expect(r8 == .none)
        let r9 = check.record(passed: true)
        #expect(r9 == .none)
        let r10 = check.record(passed: true)
        #expect(r10 == .becameHealthy)
        #expect(check.state == .healthy(consecutiveFailures: 0))
    }
}

@Suite struct StatusMatcherTests {
    /// Codes, ranges and classes parse; nonsense does not.
    @Test func parsesCodesRangesAndClasses() throws {
        let matcher = try #require(StatusMatcher("200, 204,3xx, 410-412"))
        #expect(matcher.matches(200) && matcher.matches(204) && matcher.matches(302) && matcher.matches(411))
        #expect(!matcher.matches(201) && !matcher.matches(500))
        #expect(StatusMatcher("2xx")?.matches(299) == true)
        #expect(StatusMatcher("abc") == nil)
        #expect(StatusMatcher("700") == nil)
        #expect(StatusMatcher("") == nil)
    }
}

import Foundation
import Testing

@testable import EdgeBalancer

@Suite struct RetryBudgetTests {
    /// Retries stop at the minimum plus the ratio of recent requests.
    @Test func capsRetriesAtRatioPlusMinimum() {
        let clock = TestClock()
        var budget = RetryBudget(configuration: .init(ratio: 0.2, minimumPerSecond: 1, windowSeconds: 10), origin: clock.now)
        for _ in 0..<100 { budget.recordRequest(now: clock.now) }
        var granted = 0
        while budget.tryRetry(now: clock.now), granted < 1000 { granted += 1 }
        #expect(granted == 20 + 10)
    }

    /// Old requests and retries leave the window.
    @Test func forgetsWhatLeftTheWindow() {
        let clock = TestClock()
        var budget = RetryBudget(configuration: .init(ratio: 0.5, minimumPerSecond: 0, windowSeconds: 2), origin: clock.now)
        for _ in 0..<10 { budget.recordRequest(now: clock.now) }
        #expect(budget.totals(now: clock.now).requests == 10)
        clock.advance(by: .seconds(3))
        #expect(budget.totals(now: clock.now).requests == 0)
        let granted = budget.tryRetry(now: clock.now)
        #expect(!granted)
    }
}

@Suite struct ShardedRetryBudgetTests {
    /// Requests counted on four threads (so, by their thread ids, in up to four shards) all count
    /// towards the cap that a retry on yet another thread sees.
    @Test func capsRetriesAtTheRatioOfRequestsFromEveryThread() {
        let clock = TestClock()
        let now = clock.now
        let budget = ShardedRetryBudget(configuration: .init(ratio: 0.2, minimumPerSecond: 1, windowSeconds: 10), origin: now)
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread {
                for _ in 0..<250 { budget.recordRequest(now: now) }
                group.leave()
            }.start()
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        var granted = 0
        while budget.tryRetry(now: now), granted < 1000 { granted += 1 }
        #expect(granted == 200 + 10)
    }
}

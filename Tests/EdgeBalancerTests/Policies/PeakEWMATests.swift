import Testing

@testable import EdgeBalancer

@Suite struct PeakEWMATests {
    /// A sample above the estimate replaces it at once.
    @Test func peaksAreTakenAtOnce() {
        let clock = TestClock()
        var ewma = PeakEWMA(configuration: .init(decay: .seconds(10), initialLatency: .milliseconds(1)), now: clock.now)
        ewma.observe(0.050, at: clock.now)
        #expect(ewma.value(at: clock.now) == 0.050)
    }

    /// Lower samples pull the estimate down over about τ, not at once.
    @Test func lowerSamplesBlendInOverTheDecayTime() {
        let clock = TestClock()
        var ewma = PeakEWMA(configuration: .init(decay: .seconds(10), initialLatency: .milliseconds(100)), now: clock.now)
        clock.advance(by: .milliseconds(100))
        ewma.observe(0.010, at: clock.now)
        #expect(ewma.estimate > 0.095)  // one sample 100 ms later barely moves it
        for _ in 0..<100 {
            clock.advance(by: .milliseconds(100))
            ewma.observe(0.010, at: clock.now)
        }
        // 10 s of 10 ms samples: within 1/e of the way back.
        #expect(ewma.estimate < 0.010 + 0.090 * 0.37 + 0.001)
        #expect(ewma.estimate > 0.010)
    }

    /// Read without new samples, the estimate decays toward zero.
    @Test func idleEstimateDecays() {
        let clock = TestClock()
        var ewma = PeakEWMA(configuration: .init(decay: .seconds(10), initialLatency: .milliseconds(1)), now: clock.now)
        ewma.observe(0.100, at: clock.now)
        clock.advance(by: .seconds(10))
        #expect(abs(ewma.value(at: clock.now) - 0.100 / 2.718_281_828) < 0.001)
    }
}

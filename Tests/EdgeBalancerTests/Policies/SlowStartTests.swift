import Testing

@testable import EdgeBalancer

@Suite struct SlowStartTests {
    /// The factor starts at the minimum and grows linearly to 1 over the window.
    @Test func rampsLinearlyFromTheMinimum() {
        let clock = TestClock()
        let ramp = SlowStart(start: clock.now, window: .seconds(20), minimumFactor: 0.1)
        #expect(ramp.factor(at: clock.now) == 0.1)
        clock.advance(by: .seconds(10))
        #expect(abs(ramp.factor(at: clock.now) - 0.5) < 1e-9)
        #expect(!ramp.isOver(at: clock.now))
        clock.advance(by: .seconds(10))
        #expect(ramp.factor(at: clock.now) == 1)
        #expect(ramp.isOver(at: clock.now))
    }
}

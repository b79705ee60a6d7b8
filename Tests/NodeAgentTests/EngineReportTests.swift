import Foundation
import GatewayCore
import NIOCore
import Testing

@testable import NodeAgent

/// Reading the engine's answers and turning them into health and load, without sockets.
@Suite struct EngineReportTests {
    /// `/health` numbers are read whether the engine sends JSON numbers or numeric strings.
    @Test func healthReportAcceptsNumbersAndNumericStrings() throws {
        let numbers = try #require(
            EngineHealthReport(json: Data(#"{"status":"ok","in_flight":4,"requests_total":100,"p99_ms":12.5,"redis":"up"}"#.utf8)))
        #expect(numbers.inFlight == 4 && numbers.requestsTotal == 100 && numbers.p99Milliseconds == 12.5 && numbers.redis == "up")
        let strings = try #require(
            EngineHealthReport(json: Data(#"{"status":"ok","in_flight":"4","requests_total":"100","defs_version":7}"#.utf8)))
        #expect(strings.inFlight == 4 && strings.requestsTotal == 100 && strings.definitionsVersion == "7")
        #expect(EngineHealthReport(json: Data("not json".utf8)) == nil)
    }

    /// Requests per second and error rate come from the counters' deltas; a counter reset reports no rate.
    @Test func ratesComeFromCounterDeltas() {
        var tracker = LoadTracker()
        let start = ContinuousClock.now
        let first = tracker.load(from: EngineHealthReport(inFlight: 2, requestsTotal: 1000, errorsTotal: 10), at: start)
        #expect(first.requestsPerSecond == 0 && first.inFlight == 2)
        let second = tracker.load(from: EngineHealthReport(requestsTotal: 1500, errorsTotal: 60), at: start + .seconds(2))
        #expect(second.requestsPerSecond == 250)
        #expect(abs(second.errorRate - 0.1) < 1e-9)
        let reset = tracker.load(from: EngineHealthReport(requestsTotal: 5, errorsTotal: 0), at: start + .seconds(3))
        #expect(reset.requestsPerSecond == 0)
        let after = tracker.load(from: EngineHealthReport(requestsTotal: 105, errorsTotal: 0), at: start + .seconds(4))
        #expect(after.requestsPerSecond == 100)
    }

    /// Ready is up; ready without Redis is degraded; 503 and silence are down, each with its reason.
    @Test func probeOutcomesMapToHealth() {
        let ok = ProbeResult.assess(readiness: .ready, report: EngineHealthReport(status: "ok", redis: "up"), load: .zero)
        #expect(ok.health == .up && ok.reason.isEmpty)
        let noRedis = ProbeResult.assess(readiness: .ready, report: EngineHealthReport(status: "ok", redis: "down"), load: .zero)
        #expect(noRedis.health == .degraded && noRedis.reason == "engine cannot reach redis")
        let starting = ProbeResult.assess(readiness: .notReady("loading definitions"), report: nil, load: .zero)
        #expect(starting.health == .down && starting.reason == "engine not ready: loading definitions")
        let silent = ProbeResult.assess(readiness: .unreachable("connection refused"), report: nil, load: .zero)
        #expect(silent.health == .down && silent.reason.contains("connection refused"))
    }

    /// Each scope survives the trip through the stream and becomes the engine's purge body.
    @Test func scopesRoundTripThroughTheStream() throws {
        let scopes: [InvalidationScope] = [.all, .api("orders"), .prefix("/orders/v1", api: "orders"), .prefix("/img"), .key("GET /a?b")]
        for scope in scopes {
            let entry = RedisStreamEntry(id: "1-0", fields: scope.streamFields)
            #expect(InvalidationScope(entry: entry) == scope)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(scope.purgeRequestJSON.utf8)) as? [String: String])
            #expect(body["scope"] == entry["scope"])
        }
        #expect(InvalidationScope(entry: RedisStreamEntry(id: "1-0", fields: [("scope", "api")])) == nil)
        #expect(InvalidationScope(entry: RedisStreamEntry(id: "1-0", fields: [("scope", "everything")])) == nil)
    }

    /// The state file is replaced whole and read back; a missing file is no record, a garbled one an error.
    @Test func stateFileRoundTrips() async throws {
        try await withTemporaryDirectory { directory in
            let file = InvalidationStateFile(path: directory + "/agent.state", node: "n1")
            #expect(try await file.load() == nil)
            try await file.save(RedisStreamID("1700000000000-3")!)
            #expect(try await file.load() == RedisStreamID("1700000000000-3"))
            try await file.save(RedisStreamID("1700000000001-0")!)
            #expect(try await file.load() == RedisStreamID("1700000000001-0"))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp") }
            #expect(leftovers.isEmpty)
            try Data("{garbage".utf8).write(to: URL(fileURLWithPath: directory + "/agent.state"))
            await #expect(throws: (any Error).self) { try await file.load() }
        }
    }
}

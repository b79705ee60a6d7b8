@testable import GatewayCore
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayEngine

@Suite struct RouteTableTests {
    /// The longest listen path wins, matched on whole segments only.
    @Test func longestPrefixOnSegmentBoundaries() {
        let table = RouteTable(definitions: [
            makeAPI("root", path: "/"), makeAPI("api", path: "/api"), makeAPI("v1", path: "/api/v1"),
        ])
        func id(_ path: String) -> String? { table.match(host: "x", path: path)?.route.id }
        #expect(id("/api/v1/orders") == "v1")
        #expect(id("/api/v1") == "v1")
        #expect(id("/api/v1/") == "v1")
        #expect(id("/api/v10") == "api")
        #expect(id("/api") == "api")
        #expect(id("/apix") == "root")
        #expect(id("/") == "root")
        #expect(id("") == "root")
    }

    /// Listen paths of every length match, those of 64 bytes and more too (candidates are looked up
    /// only at lengths some listen path has), and lengths count UTF-8 bytes.
    @Test func listenPathsOfAnyLength() {
        let long = "/" + String(repeating: "l", count: 70)
        let exactly63 = "/" + String(repeating: "m", count: 62)
        let table = RouteTable(definitions: [
            makeAPI("long", path: long), makeAPI("63", path: exactly63), makeAPI("accent", path: "/caf\u{e9}"),
            makeAPI("deep", path: "/a/b/c/d"),
        ])
        func id(_ path: String) -> String? { table.match(host: nil, path: path)?.route.id }
        #expect(id(long) == "long")
        #expect(id(long + "/x/y") == "long")
        #expect(id(long + "l") == nil)
        #expect(id(exactly63 + "/z") == "63")
        #expect(id("/caf\u{e9}/menu") == "accent")
        #expect(id("/cafe/menu") == nil)
        #expect(id("/a/b/c/d/e/f") == "deep")
        #expect(id("/a/b/c") == nil)
    }

    /// A serving table's routes carry their API's metrics (the engine's own, kept across rebuilds); a
    /// table built only to check definitions makes none, so a refused API leaves no series behind.
    @Test func routesCarryMetricsOnlyInServingTables() {
        let definitions = [makeAPI("api", path: "/api")]
        #expect(RouteTable(definitions: definitions).routes["api"]?.metrics == nil)
        let metrics = EngineMetrics()
        let serving = RouteTable(definitions: definitions, metrics: metrics)
        #expect(serving.routes["api"]?.metrics === metrics.api("api"))
        let rebuilt = RouteTable(definitions: definitions + [makeAPI("v2", path: "/v2")], previous: serving, metrics: metrics)
        #expect(rebuilt.routes["api"]?.metrics === serving.routes["api"]?.metrics)
        #expect(rebuilt.routes["v2"]?.metrics === metrics.api("v2"))
    }

    /// A route hears how the forwards to its targets ended (it is the plans' observer, not a closure
    /// per request): a target that refused the connection leaves the rotation, one that answered stays.
    @Test func routeTakesARefusingTargetOutOfRotation() throws {
        let definitions = [
            makeAPI("api", path: "/api", targets: [.init(url: "http://127.0.0.1:9001"), .init(url: "http://127.0.0.1:9002")])
        ]
        let metrics = EngineMetrics()
        let route = try #require(RouteTable(definitions: definitions, metrics: metrics).routes["api"])
        #expect(route.engineMetrics === metrics)
        func outcome(_ failure: ProxyOutcome.Failure?) -> ProxyOutcome {
            ProxyOutcome(
                target: UpstreamTarget(host: "127.0.0.1", port: 9001), status: failure == nil ? .ok : nil, failure: failure,
                timeToFirstByte: failure == nil ? .milliseconds(2) : nil, total: .milliseconds(3), responseStarted: failure == nil)
        }
        route.forwardEnded(outcome(nil), tag: 0)
        #expect(Set((0..<4).compactMap { _ in route.balancer.next() }) == [0, 1])
        route.forwardEnded(outcome(.connectFailed), tag: 0)
        #expect((0..<4).compactMap { _ in route.balancer.next() } == [1, 1, 1, 1])
    }

    @Test func noMatchWithoutACatchAll() {
        let table = RouteTable(definitions: [makeAPI("api", path: "/api")])
        #expect(table.match(host: nil, path: "/other") == nil)
        #expect(table.match(host: nil, path: "/") == nil)
    }

    /// Exact hosts come before wildcards, wildcards before host-less APIs; a host group whose paths do
    /// not match falls through to the next group.
    @Test func hostPrecedenceAndFallThrough() {
        let table = RouteTable(definitions: [
            makeAPI("exact", path: "/a", hosts: ["api.example.com"]),
            makeAPI("wild", path: "/", hosts: ["*.example.com"]),
            makeAPI("deepwild", path: "/", hosts: ["*.eu.example.com"]),
            makeAPI("any", path: "/"),
        ])
        func id(_ host: String?, _ path: String) -> String? { table.match(host: host, path: path)?.route.id }
        #expect(id("api.example.com", "/a/1") == "exact")
        #expect(id("API.Example.com:8443", "/a") == "exact")
        #expect(id("api.example.com", "/b") == "wild")  // exact host has no /b: falls through
        #expect(id("shop.example.com", "/a") == "wild")
        #expect(id("x.eu.example.com", "/") == "deepwild")  // longest wildcard first
        #expect(id("example.com", "/") == "any")  // a wildcard never matches the apex
        #expect(id("other.org", "/a") == "any")
        #expect(id(nil, "/a") == "any")
    }

    @Test func inactiveAPIsAreLeftOut() {
        let table = RouteTable(definitions: [makeAPI("on", path: "/"), makeAPI("off", path: "/off", active: false)])
        #expect(table.match(host: nil, path: "/off/x")?.route.id == "on")
        #expect(table.routes.keys.sorted() == ["on"])
        #expect(table.definitions.map(\.id) == ["off", "on"])
    }

    /// The version is the same for the same definitions in any order, and changes with any field.
    @Test func versionIsAStableHashOfTheDefinitions() {
        let a = makeAPI("a"), b = makeAPI("b")
        let v1 = RouteTable(definitions: [a, b]).version
        #expect(v1 == RouteTable(definitions: [b, a]).version)
        #expect(v1.count == 64 && v1.allSatisfy(\.isHexDigit))
        var changed = b
        changed.active = false
        #expect(RouteTable(definitions: [a, changed]).version != v1)
        changed = b
        changed.targets[0].weight = 2
        #expect(RouteTable(definitions: [a, changed]).version != v1)
        #expect(RouteTable.empty.version != v1)
    }

    /// Stripping removes the listen path; the target's base path is put in front.
    @Test func forwardedPathStripsListenPathAndAddsBasePath() throws {
        let table = RouteTable(definitions: [
            makeAPI("strip", path: "/svc", strip: true), makeAPI("keep", path: "/keep"),
            makeAPI("host", hosts: ["h.example.com"], strip: true),
        ])
        let strip = try #require(table.match(host: nil, path: "/svc/orders/1"))
        #expect(strip.forwardedPath == "/orders/1")
        #expect(strip.upstreamPath(basePath: "/v2") == "/v2/orders/1")
        #expect(table.match(host: nil, path: "/svc")?.forwardedPath == "/")
        #expect(table.match(host: nil, path: "/keep/x")?.forwardedPath == "/keep/x")
        #expect(table.match(host: "h.example.com", path: "/x")?.forwardedPath == "/x")
    }

    /// Two active APIs claiming the same host and path: the lower id keeps it, the clash is reported.
    @Test func conflictsKeepTheLowerID() {
        let table = RouteTable(definitions: [makeAPI("b", path: "/same"), makeAPI("a", path: "/same")])
        #expect(table.match(host: nil, path: "/same")?.route.id == "a")
        #expect(table.conflicts.count == 1)
        #expect(table.conflicts.first?.hasPrefix("b:") == true)
    }

    /// A rebuild keeps the balancer (and its passive-health state) of APIs whose targets did not change.
    @Test func rebuildKeepsBalancersOfUnchangedTargets() {
        let first = RouteTable(definitions: [makeAPI("same"), makeAPI("moved")])
        var moved = makeAPI("moved")
        moved.targets = [.init(url: "http://127.0.0.1:9002")]
        var renamed = makeAPI("same")
        renamed.name = "renamed"
        let second = RouteTable(definitions: [renamed, moved], previous: first)
        #expect(second.routes["same"]?.balancer === first.routes["same"]?.balancer)
        #expect(second.routes["moved"]?.balancer !== first.routes["moved"]?.balancer)
        #expect(second.routes["same"]?.definition.name == "renamed")
    }

    @Test func holderSwapsWholeTables() {
        let holder = RouteTableHolder()
        #expect(!holder.isLoaded)
        let old = holder.table
        let table = RouteTable(definitions: [makeAPI("a")])
        holder.swap(table, storeVersion: .init(counter: 3, epoch: "e"))
        #expect(holder.isLoaded)
        #expect(holder.table === table)
        #expect(holder.snapshot.storeVersion?.counter == 3)
        #expect(old.routes.isEmpty, "a reader holding the old table keeps it unchanged")
    }
}

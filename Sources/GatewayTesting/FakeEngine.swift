import Foundation
import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A stand-in for a gateway-engine's admin API, for testing what talks to it (the node-agent) without a
/// real engine. It implements exactly the contract the agent relies on:
///
/// - `GET /ready` (no token): 200 `{"status":"ready"}`, or 503 `{"error":"not ready: <reason>", ...}`
///   after ``setNotReady(_:)``;
/// - `GET /health` (no token): 200 with `status`, `in_flight`, `requests_total`, `errors_total`,
///   `p50_ms`, `p99_ms`, `defs_version`, `redis`, `version`;
/// - `POST /cache/purge` (bearer token) with `{"scope":"all"}`, `{"scope":"api","api":…}`,
///   `{"scope":"prefix","prefix":…,"api":…}` or `{"scope":"key","key":…}`: 200 `{"purged":n}`, 400 for
///   a malformed scope, or the status set with ``failPurges(status:)``.
///
/// It records every applied purge in order, and can go down (nothing listens: connections are refused)
/// and come back up on the same port.
///
/// ```swift
/// try await withFakeEngine { engine in
///     // point the agent at engine.adminURL with engine.token
///     await engine.stop()           // the engine is down
///     try await engine.start()      // and back
///     #expect(engine.purges.map(\.scope) == ["all"])
/// }
/// ```
public final class FakeEngine: Sendable {
    /// One purge the engine applied.
    public struct Purge: Sendable, Hashable, CustomStringConvertible {
        public var scope: String
        public var api: String?
        public var prefix: String?
        public var key: String?

        public init(scope: String, api: String? = nil, prefix: String? = nil, key: String? = nil) {
            self.scope = scope
            self.api = api
            self.prefix = prefix
            self.key = key
        }

        public static let all = Purge(scope: "all")

        public var description: String {
            ([scope] + [api.map { "api=\($0)" }, prefix.map { "prefix=\($0)" }, key.map { "key=\($0)" }].compactMap { $0 })
                .joined(separator: " ")
        }
    }

    private struct State {
        var notReadyReason: String?
        var inFlight = 0
        var requestsTotal = 0.0
        var errorsTotal = 0.0
        var p50 = 1.5
        var p99 = 9.0
        var redis = "up"
        var definitionsVersion = "defs-1"
        var purgeFailureStatus: HTTPResponseStatus?
        var purges: [Purge] = []
        var healthRequests = 0
        var healthFailuresLeft = 0
        var readyRequests = 0
        var purgeAttempts = 0
        var server: (AdminHTTPServer, Task<Void, Never>)?
    }

    public let host = "127.0.0.1"
    public let port: Int
    /// The bearer token `POST /cache/purge` requires.
    public let token: String
    private let logger: Logger
    private let state = Mutex(State())

    private init(port: Int, token: String, logger: Logger) {
        self.port = port
        self.token = token
        self.logger = logger
    }

    /// `http://127.0.0.1:<port>`.
    public var adminURL: String { "http://\(host):\(port)" }

    /// Starts an engine on a free loopback port.
    public static func start(
        token: String = "fake-engine-token-0123456789", logger: Logger = .forTesting("fake-engine")
    ) async throws
        -> FakeEngine
    {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let engine = FakeEngine(port: try await LoopbackPort.free(), token: token, logger: logger)
            do {
                try await engine.start()
                return engine
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    /// Brings the engine (back) up on its port; returns once it listens. Does nothing if it is up.
    public func start() async throws {
        guard state.withLock({ $0.server == nil }) else { return }
        var router = AdminRouter()
        addRoutes(to: &router)
        let server = AdminHTTPServer(host: host, port: port, token: token, router: router, logger: logger)
        let task = Task<Void, Never> { _ = try? await server.run() }
        do {
            _ = try await server.listeningAddress
        } catch {
            task.cancel()
            await task.value
            throw error
        }
        state.withLock { $0.server = (server, task) }
    }

    /// Takes the engine down: stops listening and closes its connections; returns once it is down.
    public func stop() async {
        guard let (_, task) = state.withLock({ $0.server.take() }) else { return }
        task.cancel()
        await task.value
    }

    public var isRunning: Bool { state.withLock { $0.server != nil } }

    // MARK: Behaviour

    /// Makes `/ready` answer 503 with `reason`; nil makes it ready again.
    public func setNotReady(_ reason: String?) { state.withLock { $0.notReadyReason = reason } }
    /// The `in_flight` that `/health` reports.
    public func setInFlight(_ count: Int) { state.withLock { $0.inFlight = count } }
    /// The next `count` `/health` requests get a 500 instead of the report (an engine too busy to answer).
    public func failHealth(count: Int) { state.withLock { $0.healthFailuresLeft = count } }
    /// The `redis` that `/health` reports: `up` or `down`.
    public func setRedis(_ value: String) { state.withLock { $0.redis = value } }
    /// Adds to the counters `/health` reports.
    public func count(requests: Int, errors: Int = 0) {
        state.withLock {
            $0.requestsTotal += Double(requests)
            $0.errorsTotal += Double(errors)
        }
    }

    /// Makes purges fail with `status` (nil: apply them again).
    public func failPurges(status: HTTPResponseStatus?) { state.withLock { $0.purgeFailureStatus = status } }

    /// Every purge applied so far, in order.
    public var purges: [Purge] { state.withLock { $0.purges } }
    /// Purge calls received, applied or not.
    public var purgeAttempts: Int { state.withLock { $0.purgeAttempts } }
    public var healthRequests: Int { state.withLock { $0.healthRequests } }
    public var readyRequests: Int { state.withLock { $0.readyRequests } }

    // MARK: Routes

    private func addRoutes(to router: inout AdminRouter) {
        router.add(.GET, "/ready", requiresAuth: false) { [self] request in
            let reason: String? = state.withLock {
                $0.readyRequests += 1
                return $0.notReadyReason
            }
            if let reason { return .error(.serviceUnavailable, "not ready: \(reason)", requestID: request.requestID) }
            return .json(["status": "ready"])
        }
        router.add(.GET, "/health", requiresAuth: false) { [self] request in
            let body: String? = state.withLock { s in
                s.healthRequests += 1
                if s.healthFailuresLeft > 0 {
                    s.healthFailuresLeft -= 1
                    return nil
                }
                let status = s.notReadyReason == nil ? (s.redis == "up" ? "ok" : "degraded") : "starting"
                return """
                    {"status":"\(status)","in_flight":\(s.inFlight),"requests_total":\(s.requestsTotal),\
                    "errors_total":\(s.errorsTotal),"p50_ms":\(s.p50),"p99_ms":\(s.p99),\
                    "defs_version":"\(s.definitionsVersion)","redis":"\(s.redis)","version":"fake-1"}
                    """
            }
            guard let body else {
                return .error(.internalServerError, "health report failed (fake engine told to fail)", requestID: request.requestID)
            }
            return .rawJSON(body)
        }
        router.add(.POST, "/cache/purge") { [self] request in
            let failure: HTTPResponseStatus? = state.withLock {
                $0.purgeAttempts += 1
                return $0.purgeFailureStatus
            }
            if let failure { return .error(failure, "purge failed (fake engine told to fail)", requestID: request.requestID) }
            guard let purge = Self.parsePurge(request.body) else {
                return .error(.badRequest, "body must be a purge scope: all, api, prefix or key", requestID: request.requestID)
            }
            let count = state.withLock {
                $0.purges.append(purge)
                return $0.purges.count
            }
            return .rawJSON(#"{"purged":\#(count)}"#)
        }
    }

    static func parsePurge(_ body: ByteBuffer) -> Purge? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any],
            let scope = object["scope"] as? String
        else { return nil }
        let api = object["api"] as? String
        let prefix = object["prefix"] as? String
        let key = object["key"] as? String
        switch scope {
        case "all": return Purge(scope: scope)
        case "api" where api?.isEmpty == false: return Purge(scope: scope, api: api)
        case "prefix" where prefix?.hasPrefix("/") == true: return Purge(scope: scope, api: api, prefix: prefix)
        case "key" where key?.isEmpty == false: return Purge(scope: scope, key: key)
        default: return nil
        }
    }
}

/// Runs `body` with a ``FakeEngine`` on a free loopback port and stops it afterwards.
public func withFakeEngine<T>(
    token: String = "fake-engine-token-0123456789",
    isolation: isolated (any Actor)? = #isolation,
    _ body: (FakeEngine) async throws -> T
) async throws -> T {
    let engine = try await FakeEngine.start(token: token)
    do {
        let result = try await body(engine)
        await engine.stop()
        return result
    } catch {
        await engine.stop()
        throw error
    }
}

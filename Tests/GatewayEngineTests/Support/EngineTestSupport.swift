import Foundation
import GatewayCore
import GatewayTesting
import Logging
import Synchronization

@testable import GatewayEngine

/// An API definition for tests: listens on `path`, forwards to one local target.
func makeAPI(
    _ id: String, path: String? = nil, hosts: [String] = [], strip: Bool = false, active: Bool = true,
    targets: [APIDefinition.Target] = [APIDefinition.Target(url: "http://127.0.0.1:9001")]
) -> APIDefinition {
    APIDefinition(
        id: id, name: id, listenPath: path ?? (hosts.isEmpty ? "/\(id)" : nil), hosts: hosts, stripListenPath: strip,
        targets: targets, active: active)
}

/// A key prefix no other test uses, so tests can share a server without seeing each other's keys.
func uniquePrefix() -> String {
    "t" + UUID().uuidString.lowercased().prefix(8)
}

/// Collects values handed over from other tasks.
final class Recorder<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
}

/// Runs services (their `run` methods) in child tasks while `body` runs, then cancels them and waits
/// for them to end.
func withServices<T: Sendable>(
    _ services: [@Sendable () async throws -> Void], _ body: () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for run in services {
            group.addTask { try await run() }
        }
        do {
            let result = try await body()
            group.cancelAll()
            while let _ = try? await group.next() {}
            return result
        } catch {
            group.cancelAll()
            while let _ = try? await group.next() {}
            throw error
        }
    }
}

/// How long `body` takes.
func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let result = try await body()
    return (result, ContinuousClock.now - start)
}

import Synchronization

/// A condition that did not become true, or an operation that did not finish, in time.
public struct TestTimeoutError: Error, CustomStringConvertible {
    public var what: String
    public var after: Duration

    public var description: String { "\(what) did not happen within \(after)" }
}

/// Polls `condition` until it is true, failing after `timeout`.
///
/// Use it to wait for a state (a server that answers, a client that reconnected) instead of sleeping a
/// fixed time and hoping.
///
/// ```swift
/// try await waitUntil("the subscriber resubscribed") { await events.contains(.subscribed(resync: true)) }
/// ```
///
/// - Parameters:
///   - what: what is awaited, for the error.
///   - timeout: how long to keep trying.
///   - interval: the pause between tries.
///   - condition: checked once right away and then after every pause; errors it throws count as false.
public func waitUntil(
    _ what: @autoclosure () -> String = "condition",
    timeout: Duration = .seconds(10),
    interval: Duration = .milliseconds(10),
    isolation: isolated (any Actor)? = #isolation,
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if (try? await condition()) == true { return }
        if clock.now >= deadline { throw TestTimeoutError(what: what(), after: timeout) }
        try await Task.sleep(for: interval)
    }
}

/// Runs `body` but gives up after `timeout` with ``TestTimeoutError``, even if `body` ignores
/// cancellation (it then keeps running detached and is abandoned).
///
/// Meant for tests whose failure mode is a hang: the test fails fast instead of stalling the suite.
public func withTimeout<T: Sendable>(
    _ timeout: Duration,
    _ what: String = "operation",
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = Mutex<CheckedContinuation<T, any Error>?>(nil)
    let work = Mutex<[Task<Void, Never>]>([])
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            outcome.withLock { $0 = continuation }
            let finish: @Sendable (Result<T, any Error>) -> Void = { result in
                outcome.withLock { $0.take() }?.resume(with: result)
                for task in work.withLock({ $0 }) { task.cancel() }
            }
            let worker = Task {
                do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            }
            let timer = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                finish(.failure(TestTimeoutError(what: what, after: timeout)))
            }
            work.withLock { $0 = [worker, timer] }
            // If the race was already decided, nobody cancelled the loser yet.
            if outcome.withLock({ $0 == nil }) { worker.cancel(); timer.cancel() }
        }
    } onCancel: {
        for task in work.withLock({ $0 }) { task.cancel() }
    }
}

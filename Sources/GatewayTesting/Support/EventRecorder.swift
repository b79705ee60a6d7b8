import GatewayCore

/// Collects the elements of an async sequence as they arrive, so a test can wait for one with
/// ``waitUntil(_:timeout:interval:isolation:_:)`` while the sequence keeps running.
///
/// ```swift
/// let recorder = EventRecorder<RedisPubSubEvent>()
/// group.addTask { await recorder.record(subscriber.events) }
/// try await waitUntil { await recorder.contains(.subscribed(resync: false)) }
/// ```
public actor EventRecorder<Element: Sendable> {
    public private(set) var elements: [Element] = []

    public init() {}

    public func append(_ element: Element) {
        elements.append(element)
    }

    /// Appends every element of `sequence` until it ends or the task is cancelled.
    public func record<S: AsyncSequence & Sendable>(_ sequence: S) async where S.Element == Element {
        do {
            for try await element in sequence { elements.append(element) }
        } catch {
            // The sequence failed or was cancelled: recording simply stops.
        }
    }
}

extension EventRecorder where Element: Equatable {
    public func contains(_ element: Element) -> Bool {
        elements.contains(element)
    }

    /// The position of the first `element`, if it arrived.
    public func firstIndex(of element: Element) -> Int? {
        elements.firstIndex(of: element)
    }
}

/// Runs `subscriber` and records its events while `body` runs (after waiting for its first
/// subscription, at most `timeout`); cancels both when `body` ends.
public func withRecordedSubscription<T>(
    _ subscriber: RedisSubscriber, timeout: Duration = .seconds(10),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (EventRecorder<RedisPubSubEvent>) async throws -> T
) async throws -> T {
    let recorder = EventRecorder<RedisPubSubEvent>()
    let running = Task { try await subscriber.run() }
    let recording = Task { await recorder.record(subscriber.events) }
    defer {
        running.cancel()
        recording.cancel()
    }
    try await waitUntil("the subscription", timeout: timeout) { await recorder.contains(.subscribed(resync: false)) }
    return try await body(recorder)
}

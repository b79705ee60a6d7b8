import Foundation
import Logging
import Synchronization

/// A log handler that keeps what is logged, so tests can assert on it (and on what must never be in it).
///
/// ```swift
/// let logs = InMemoryLogHandler.Store()
/// let logger = logs.logger(label: "test")
/// // ... run the code under test with `logger` ...
/// #expect(!logs.entries.contains { $0.text.contains("hunter2") })
/// ```
public struct InMemoryLogHandler: LogHandler {
    /// One logged line with its metadata rendered as text.
    public struct Entry: Sendable, CustomStringConvertible {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]

        /// The message and every metadata value, for searching.
        public var text: String {
            ([message] + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        }

        public var description: String { "[\(level)] \(text)" }
    }

    /// Where the entries of every logger made from it go.
    public final class Store: Sendable {
        private let storage = Mutex<[Entry]>([])

        public init() {}

        public var entries: [Entry] { storage.withLock { $0 } }

        func append(_ entry: Entry) { storage.withLock { $0.append(entry) } }

        /// A logger writing here, at `level` and above.
        public func logger(label: String, level: Logger.Level = .trace) -> Logger {
            var logger = Logger(label: label) { _ in InMemoryLogHandler(store: self) }
            logger.logLevel = level
            return logger
        }
    }

    private let store: Store
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .trace

    public init(store: Store) {
        self.store = store
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        store.append(
            Entry(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
    }
}

extension Logger {
    /// A logger for tests, printing to standard error: silent unless `GC_TEST_LOG_LEVEL` names a level
    /// (`trace`, `debug`, `info`, `warning`, ...), so expected failures do not clutter the test output.
    public static func forTesting(_ label: String = "gateway-tests") -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = ProcessInfo.processInfo.environment["GC_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }
}

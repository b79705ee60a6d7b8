import NIOConcurrencyHelpers
import NIOCore

/// A Swift concurrency task executor that runs jobs on one NIO event loop.
///
/// The engine's async decisions (API key, rate limit, cache) are started with this executor as their
/// preference, so they run on the event loop of the connection that asked, like the synchronous ones,
/// instead of hopping to the global concurrent executor and back: a cache hit then completes on the
/// loop without a thread switch, and a Redis reply resumes the decision directly on the loop.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// One executor per event loop, made on first use.
    public final class PerLoop: Sendable {
        private let executors = NIOLockedValueBox<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

        public init() {}

        public func executor(for eventLoop: any EventLoop) -> EventLoopTaskExecutor {
            executors.withLockedValue { executors in
                let id = ObjectIdentifier(eventLoop)
                if let executor = executors[id] { return executor }
                let executor = EventLoopTaskExecutor(eventLoop: eventLoop)
                executors[id] = executor
                return executor
            }
        }
    }
}

import Synchronization

/// One attempt of a request on one node: releases the node's in-flight count exactly once, however many
/// times the front reports the attempt.
final class Attempt: Sendable {
    let load: NodeLoad
    private let finished = Atomic<Bool>(false)

    init(load: NodeLoad) {
        self.load = load
    }

    /// True the first time only.
    func finish() -> Bool {
        !finished.exchange(true, ordering: .acquiringAndReleasing)
    }
}

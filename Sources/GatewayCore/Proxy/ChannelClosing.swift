import NIOCore

/// Closing a connection after its last writes, bounded in time.
enum ChannelClosing {
    /// How long the last writes may take before the connection closes anyway.
    static let flushTimeout: TimeAmount = .seconds(2)

    /// Closes `channel` once `flushed` (its last writes) completes, or ``flushTimeout`` from now if the
    /// peer has not read them by then: a peer that stops reading must not hold the connection, and
    /// what is queued for it, for ever.
    static func close(_ channel: any Channel, after flushed: EventLoopFuture<Void>) {
        let deadline = channel.eventLoop.scheduleTask(in: flushTimeout) { channel.close(promise: nil) }
        flushed.whenComplete { _ in
            deadline.cancel()
            channel.close(promise: nil)
        }
    }
}

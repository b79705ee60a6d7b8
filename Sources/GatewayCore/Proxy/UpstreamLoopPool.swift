import Logging
import NIOCore
import NIOSSL
import NIOHTTP1
import NIOPosix

/// Upstream connections to backends for one event loop: exchanges on that loop reuse them without any
/// locking or thread hop.
///
/// Each target may hold `limitPerTarget` connections on this loop (HTTP/1.1: idle, in use or
/// connecting; h2c: streams). A request past the limit waits in the target's first-come-first-served
/// queue: a connection given back goes straight to the first waiter, a closed one lets the first waiter
/// open a new one, and a waiter still waiting after its connect timeout fails with
/// ``UpstreamPoolError/connectionLimitReached``.
///
/// HTTP/1.1 connections given back stay idle, reused most recently used first; those above
/// `maxIdlePerTarget` are closed once they stay unused for `surplusIdleTimeout`.
final class UpstreamLoopPool {
    let eventLoop: any EventLoop
    let configuration: UpstreamPools.Configuration
    let limitPerTarget: Int
    private var targets: [UpstreamAddress: UpstreamTargetPool] = [:]
    /// The next surplus check, while some target holds more idle connections than `maxIdlePerTarget`.
    private var surplusCheck: Scheduled<Void>?

    /// Client TLS for TLS targets: HTTP/1.1, or HTTP/2 with ``UpstreamProtocol/h2``.
    let tls: ClientTLSContextBox?

    let logger: Logger?

    init(
        eventLoop: any EventLoop, configuration: UpstreamPools.Configuration, limitPerTarget: Int, tls: ClientTLSContextBox? = nil,
        logger: Logger? = nil
    ) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.limitPerTarget = limitPerTarget
        self.tls = tls
        self.logger = logger
    }

    /// Whether `target`'s requests go as streams of a shared HTTP/2 connection (h2c, or h2 over TLS),
    /// else over HTTP/1.1 connections.
    private func multiplexes(_ target: UpstreamTarget) -> Bool {
        switch configuration.upstreamProtocol {
        case .http1: false
        case .h2c: !target.tls
        case .h2: target.tls
        }
    }

    convenience init(eventLoop: any EventLoop, maxIdlePerTarget: Int, maxUsesPerConnection: Int = 10_000) {
        var configuration = UpstreamPools.Configuration()
        configuration.maxIdlePerTarget = maxIdlePerTarget
        configuration.maxUsesPerConnection = maxUsesPerConnection
        self.init(eventLoop: eventLoop, configuration: configuration, limitPerTarget: configuration.maxConnectionsPerTarget)
    }

    /// An idle connection to `target`, or a new one, handed to `completion` on this loop. `reused` tells
    /// which (a reused connection may have been closed by the backend in the meantime, which makes a
    /// failure on it safe to retry). With h2c, a new stream on a shared HTTP/2 connection, unless
    /// `http1Only` (a request that switches protocols needs a connection of its own).
    func acquire(
        _ target: UpstreamTarget, connectTimeout: TimeAmount, http1Only: Bool = false,
        completion: @escaping UpstreamWaiter.Completion
    ) {
        eventLoop.preconditionInEventLoop()
        let slot = self.slot(for: target)
        if !http1Only && multiplexes(target) {
            acquireStream(slot, connectTimeout: connectTimeout, completion: completion)
            return
        }
        if let connection = takeIdle(from: slot) {
            completion(.success((connection, true)))
            return
        }
        guard slot.held < limitPerTarget else {
            wait(in: slot, connectTimeout: connectTimeout, completion: completion)
            return
        }
        slot.held += 1
        connect(slot, connectTimeout: connectTimeout, completion: completion)
    }

    /// An idle HTTP/1.1 connection to `target`, if one is open (nil with h2c, unless `http1Only`: streams
    /// go through ``acquire(_:connectTimeout:http1Only:completion:)``).
    func takeIdle(_ target: UpstreamTarget, http1Only: Bool = false) -> UpstreamConnection? {
        guard http1Only || !multiplexes(target) else { return nil }
        return takeIdle(from: slot(for: target))
    }

    private func takeIdle(from slot: UpstreamTargetPool) -> UpstreamConnection? {
        // Closed idle connections still count until their close is processed (see `closed`).
        while let connection = slot.idle.popLast() {
            slot.idleLowWater = min(slot.idleLowWater, slot.idle.count)
            if connection.isActive { return connection }
        }
        return nil
    }

    private func slot(for target: UpstreamTarget) -> UpstreamTargetPool {
        let address = UpstreamAddress(target)
        if let slot = targets[address] { return slot }
        let slot = UpstreamTargetPool(target: target)
        targets[address] = slot
        return slot
    }

    /// Opens an HTTP/1.1 connection; its slot is already counted.
    private func connect(_ slot: UpstreamTargetPool, connectTimeout: TimeAmount, completion: @escaping UpstreamWaiter.Completion) {
        let target = slot.target
        let tls: UpstreamTLSHandshake?
        do {
            tls = try tlsHandshake(for: target, http2: false)
        } catch {
            slotFreed(slot)
            completion(.failure(error))
            return
        }
        connect(target, connectTimeout: connectTimeout, tls: tls) { channel in
            try channel.pipeline.syncOperations.addHandler(UpstreamHTTP1Handler())
        }
        .assumeIsolated()
        .whenComplete { result in
            if case .failure(let error) = result, target.tls { self.noteTLSFailure(slot, error) }
            switch result {
            case .success(let channel):
                // Inactive already: its close went by before the connection existed to report it.
                guard channel.isActive, let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHTTP1Handler.self) else {
                    channel.close(promise: nil)
                    self.slotFreed(slot)
                    completion(.failure(ChannelError.ioOnClosedChannel))
                    return
                }
                let connection = UpstreamConnection(channel: channel, target: target, transport: .http1(handler), slot: slot, session: nil)
                connection.pool = self
                completion(.success((connection, false)))
            case .failure(let error):
                completion(.failure(error))
                self.slotFreed(slot)
            }
        }
    }

    /// The TLS handshake a connection to `target` starts with (nil for a plain target), offering ALPN
    /// `h2` when `http2` (the server must choose it), else `http/1.1` (what a server that ignores ALPN
    /// speaks anyway).
    func tlsHandshake(for target: UpstreamTarget, http2: Bool) throws(UpstreamPoolError) -> UpstreamTLSHandshake? {
        guard target.tls else { return nil }
        guard let box = self.tls else { throw .noTLSContext }
        return UpstreamTLSHandshake(
            context: http2 ? box.currentH2 : box.current, required: http2 ? "h2" : nil, done: eventLoop.makePromise())
    }

    /// Connects to `target` with `handlers` after the TLS handler (when `tls`). With TLS the channel is
    /// handed out once its handshake is done (within the connect timeout) and the server agreed to the
    /// offered protocol, so a certificate the backend cannot prove fails the connect, not the request
    /// written to it.
    func connect(
        _ target: UpstreamTarget, connectTimeout: TimeAmount, tls: UpstreamTLSHandshake?,
        handlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        bootstrap(connectTimeout: connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(ClientTLS.handler(context: tls.context, host: target.host))
                        try channel.pipeline.syncOperations.addHandler(TLSHandshakeHandler(done: tls.done, expectedProtocol: tls.required))
                    }
                    try handlers(channel)
                }
            }
            .connect(host: target.host, port: target.port)
            .flatMap { channel in
                guard let tls else { return channel.eventLoop.makeSucceededFuture(channel) }
                let done = tls.done
                let timeout = channel.eventLoop.scheduleTask(in: connectTimeout) { done.fail(ChannelError.connectTimeout(connectTimeout)) }
                return done.futureResult.map { channel }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }.always { _ in timeout.cancel() }
            }
            .flatMapErrorThrowing { error in
                tls?.done.fail(error)  // the connect failed before the handshake began
                throw error
            }
    }

    /// Logs a failed connection to a TLS target, at most once per target and loop every 10 s (a backend
    /// with a bad certificate fails every request that tries it).
    func noteTLSFailure(_ slot: UpstreamTargetPool, _ error: any Error) {
        let now = NIODeadline.now()
        if let last = slot.failureLoggedAt, now - last < .seconds(10) { return }
        slot.failureLoggedAt = now
        logger?.warning(
            "tls connection to a backend failed", metadata: ["backend": "\(slot.target)", "error": "\(error)"])
    }

    /// How every upstream connection (HTTP/1.1 or h2c) is opened on this loop.
    func bootstrap(connectTimeout: TimeAmount) -> ClientBootstrap {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
    }

    /// Queues a request until a slot frees up or `connectTimeout` passes.
    func wait(in slot: UpstreamTargetPool, connectTimeout: TimeAmount, completion: @escaping UpstreamWaiter.Completion) {
        let waiter = UpstreamWaiter(connectTimeout: connectTimeout, completion: completion)
        slot.waiters.append(waiter)
        waiter.timer = eventLoop.assumeIsolated().scheduleTask(in: connectTimeout) {
            if slot.remove(waiter) { waiter.complete(.failure(UpstreamPoolError.connectionLimitReached)) }
        }
    }

    /// Takes back a connection whose exchange finished cleanly: to the first waiter, the idle list, or
    /// closed. An HTTP/2 stream carries one exchange and ends by itself.
    func release(_ connection: UpstreamConnection) {
        connection.delegate = nil
        if connection.session != nil {
            releaseStream(connection)
            return
        }
        connection.uses += 1
        // An HTTP/1.1 connection to a target whose requests go as HTTP/2 streams was opened for one
        // protocol switch (``acquire(_:connectTimeout:http1Only:completion:)``): it is not kept.
        guard connection.reusable, connection.isActive, connection.uses < configuration.maxUsesPerConnection,
            configuration.upstreamProtocol == .http1 || !multiplexes(connection.target)
        else {
            connection.close()  // `closed` frees the slot
            return
        }
        connection.setReadingPaused(false)
        let slot = connection.slot
        if let waiter = slot.popWaiter() {
            waiter.complete(.success((connection, true)))
            return
        }
        slot.idle.append(connection)
        if slot.idle.count > configuration.maxIdlePerTarget { scheduleSurplusCheck() }
    }

    private func scheduleSurplusCheck() {
        guard surplusCheck == nil else { return }
        for slot in targets.values { slot.idleLowWater = slot.idle.count }
        surplusCheck = eventLoop.assumeIsolated().scheduleTask(in: configuration.surplusIdleTimeout) {
            self.surplusCheck = nil
            self.closeSurplusIdle()
        }
    }

    /// Closes idle connections above `maxIdlePerTarget` that were not used since the last check (the
    /// longest unused first), and checks again later while any target still has more than that idle.
    private func closeSurplusIdle() {
        var surplusLeft = false
        for slot in targets.values {
            let unused = min(slot.idleLowWater, slot.idle.count - configuration.maxIdlePerTarget)
            if unused > 0 {
                let closing = slot.idle.prefix(unused)
                slot.idle.removeFirst(unused)
                for connection in closing { connection.close() }  // `closed` frees their slots
            }
            if slot.idle.count > configuration.maxIdlePerTarget { surplusLeft = true }
        }
        if surplusLeft { scheduleSurplusCheck() }
    }

    /// A connection (or stream) closed: it no longer counts, and the first waiter may open another.
    func closed(_ connection: UpstreamConnection) {
        let slot = connection.slot
        if let session = connection.session {
            session.streamClosed()
        } else if let i = slot.idle.firstIndex(where: { $0 === connection }) {
            slot.idle.remove(at: i)
            if i < slot.idleLowWater { slot.idleLowWater -= 1 }
        }
        slotFreed(slot)
    }

    /// One of `slot`'s connections (or streams) is gone: the first waiter, if any, takes its place.
    func slotFreed(_ slot: UpstreamTargetPool) {
        slot.held -= 1
        guard slot.held < limitPerTarget, let waiter = slot.popWaiter() else { return }
        slot.held += 1
        let completion: UpstreamWaiter.Completion = { waiter.complete($0) }
        if multiplexes(slot.target) {
            openStream(slot, connectTimeout: waiter.connectTimeout, mayRetry: true, completion: completion)
        } else {
            connect(slot, connectTimeout: waiter.connectTimeout, completion: completion)
        }
    }

    /// Idle connection count, for tests.
    var idleCount: Int { targets.values.reduce(0) { $0 + $1.idle.count } }

    /// Per target id: connections, streams, waiters.
    func statistics() -> [String: UpstreamPoolStatistics] {
        var result: [String: UpstreamPoolStatistics] = [:]
        for slot in targets.values {
            let h2 = multiplexes(slot.target)
            var s = result[slot.target.id] ?? UpstreamPoolStatistics()
            s.connections += h2 ? slot.sessions.count : slot.held
            s.streams += h2 ? slot.held : 0
            s.waiting += slot.waiters.count
            result[slot.target.id] = s
        }
        return result
    }

    func closeAll() {
        surplusCheck?.cancel()
        surplusCheck = nil
        for slot in targets.values {
            let idle = slot.idle
            slot.idle = []
            for connection in idle { connection.close() }
            for session in slot.sessions { session.close() }
            while let waiter = slot.popWaiter() { waiter.complete(.failure(ChannelError.ioOnClosedChannel)) }
        }
    }
}

@available(*, unavailable)
extension UpstreamLoopPool: Sendable {}

/// What a new TLS upstream connection starts with: the client context (its ALPN offer), the protocol
/// the server must choose (nil: any or none), and the promise its handshake completes.
struct UpstreamTLSHandshake: Sendable {
    let context: NIOSSLContext
    let required: String?
    let done: EventLoopPromise<Void>
}

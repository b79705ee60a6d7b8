import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix

/// HTTP/2 (h2c, or h2 over TLS): every exchange is a new stream on one of the target's HTTP/2
/// connections on this loop. A connection is opened when none has room (none yet, or all at the peer's
/// concurrent-stream limit); the per-target limit counts streams.
extension UpstreamLoopPool {
    /// Local settings of upstream HTTP/2 connections: no server push, 1 MiB stream windows.
    static let h2ConnectionConfiguration: NIOHTTP2Handler.ConnectionConfiguration = {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 0),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 16),
        ]
        configuration.targetWindowSize = 4 << 20
        return configuration
    }()

    static let h2StreamConfiguration: NIOHTTP2Handler.StreamConfiguration = {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        configuration.targetWindowSize = 1 << 20
        return configuration
    }()

    func acquireStream(_ slot: UpstreamTargetPool, connectTimeout: TimeAmount, completion: @escaping UpstreamWaiter.Completion) {
        guard slot.held < limitPerTarget else {
            wait(in: slot, connectTimeout: connectTimeout, completion: completion)
            return
        }
        slot.held += 1
        openStream(slot, connectTimeout: connectTimeout, mayRetry: true, completion: completion)
    }

    /// Opens a stream (its slot already counted) on a connection with room, or on a new connection.
    /// `mayRetry`: a failure to open it on a connection already in use is retried once on a new one.
    func openStream(_ slot: UpstreamTargetPool, connectTimeout: TimeAmount, mayRetry: Bool, completion: @escaping UpstreamWaiter.Completion) {
        let session = slot.sessions.first(where: { $0.hasRoom }) ?? connectSession(slot, connectTimeout: connectTimeout)
        session.streams += 1
        switch session.state {
        case .connecting(var pending):
            pending.append(.init(mayRetry: mayRetry, completion: completion))
            session.state = .connecting(pending: pending)
        case .ready(let multiplexer):
            createStream(
                on: session, multiplexer: multiplexer, connectTimeout: connectTimeout, reused: true, mayRetry: mayRetry, completion: completion)
        case .draining, .closed:
            preconditionFailure("a session without room was picked")
        }
    }

    private func connectSession(_ slot: UpstreamTargetPool, connectTimeout: TimeAmount) -> UpstreamH2Session {
        let session = UpstreamH2Session(slot: slot)
        slot.sessions.append(session)
        let target = slot.target
        let tls: UpstreamTLSHandshake?
        do {
            tls = try tlsHandshake(for: target, http2: true)
        } catch {
            // After the caller has counted its stream on the session, as a failed connect would.
            eventLoop.assumeIsolated().execute { self.sessionFailed(session, error: error) }
            return session
        }
        connect(target, connectTimeout: connectTimeout, tls: tls) { channel in
            // Every stream's flush flushes the connection: held to one per turn of the loop.
            try channel.pipeline.syncOperations.addHandler(TickFlushCoalescingHandler())
            let multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .client, connectionConfiguration: Self.h2ConnectionConfiguration,
                streamConfiguration: Self.h2StreamConfiguration
            ) { pushed in
                pushed.close()  // push is disabled; a peer that pushes anyway is refused
            }
            try channel.pipeline.syncOperations.addHandler(UpstreamH2SessionHandler(multiplexer: multiplexer))
        }
        .assumeIsolated()
        .whenComplete { result in
            switch result {
            case .success(let channel):
                guard channel.isActive, let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamH2SessionHandler.self) else {
                    channel.close(promise: nil)
                    self.sessionFailed(session, error: ChannelError.ioOnClosedChannel)
                    return
                }
                handler.session = session
                handler.pool = self
                session.channel = channel
                guard case .connecting(let pending) = session.state else {
                    channel.close(promise: nil)
                    return
                }
                session.state = .ready(handler.multiplexer)
                for request in pending {
                    self.createStream(
                        on: session, multiplexer: handler.multiplexer, connectTimeout: connectTimeout, reused: false,
                        mayRetry: request.mayRetry, completion: request.completion)
                }
            case .failure(let error):
                if target.tls { self.noteTLSFailure(slot, error) }
                self.sessionFailed(session, error: error)
            }
        }
        return session
    }

    private func createStream(
        on session: UpstreamH2Session, multiplexer: NIOHTTP2Handler.StreamMultiplexer, connectTimeout: TimeAmount, reused: Bool,
        mayRetry: Bool, completion: @escaping UpstreamWaiter.Completion
    ) {
        let slot = session.slot
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http),
                    UpstreamStreamHandler(),
                ])
            }
        }
        .assumeIsolated()
        .whenComplete { result in
            if case .success(let stream) = result, stream.isActive,
                let handler = try? stream.pipeline.syncOperations.handler(type: UpstreamStreamHandler.self)
            {
                let connection = UpstreamConnection(channel: stream, target: slot.target, transport: .h2Stream(handler), slot: slot, session: session)
                connection.pool = self
                completion(.success((connection, reused)))
                return
            }
            if case .success(let stream) = result { stream.close(promise: nil) }
            session.streams -= 1
            if reused && mayRetry {
                // The connection died under us (GOAWAY, reset): take no more streams on it, try a new one.
                session.drain()
                self.openStream(slot, connectTimeout: connectTimeout, mayRetry: false, completion: completion)
                return
            }
            completion(.failure(result.failureValue ?? ChannelError.ioOnClosedChannel))
            self.slotFreed(slot)
        }
    }

    /// The connection could not be set up: its waiting streams fail.
    private func sessionFailed(_ session: UpstreamH2Session, error: any Error) {
        let slot = session.slot
        let pending: [UpstreamH2Session.PendingStream]
        if case .connecting(let p) = session.state { pending = p } else { pending = [] }
        session.state = .closed
        session.streams -= pending.count
        if let i = slot.sessions.firstIndex(where: { $0 === session }) { slot.sessions.remove(at: i) }
        for request in pending {
            request.completion(.failure(error))
            slotFreed(slot)
        }
    }

    /// An HTTP/2 connection closed: it leaves the pool (its streams report their own ends).
    func sessionClosed(_ session: UpstreamH2Session) {
        let slot = session.slot
        session.state = .closed
        if let i = slot.sessions.firstIndex(where: { $0 === session }) { slot.sessions.remove(at: i) }
    }

    /// A stream's exchange finished (request and response both ended): the stream closes by itself
    /// once both END_STREAM flags went by, and that close frees the slot. It never becomes idle.
    func releaseStream(_ connection: UpstreamConnection) {
        connection.uses += 1
    }
}

extension Result {
    fileprivate var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

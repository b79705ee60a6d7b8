import Logging
import NIOCore
import NIOSSL

/// How the proxy talks to its backends.
public enum UpstreamProtocol: String, Sendable, Hashable, CaseIterable {
    /// HTTP/1.1 keep-alive connections, one exchange at a time each.
    case http1
    /// HTTP/2 with prior knowledge over plain TCP: each request is a stream on a shared connection.
    case h2c
    /// HTTP/2 over TLS (ALPN `h2`) to TLS targets, each request a stream on a shared connection; plain
    /// targets get HTTP/1.1.
    case h2
}

/// An upstream connection could not be had in time because the target was at its connection limit.
public enum UpstreamPoolError: Error, Sendable, Hashable {
    /// The request waited `connectTimeout` for one of the target's connections (or streams) and got none.
    case connectionLimitReached
    /// A TLS (`https://`) target, but the pools have no client TLS context.
    case noTLSContext
}

/// How much of each target's pool is in use, summed over the event loops.
public struct UpstreamPoolStatistics: Sendable, Hashable {
    /// HTTP/1.1: connections open or connecting (idle ones included). h2c: HTTP/2 connections.
    public var connections = 0
    /// h2c: streams open or being opened; 0 with HTTP/1.1.
    public var streams = 0
    /// Requests waiting for a connection (or a stream) because the target is at its limit.
    public var waiting = 0

    public init(connections: Int = 0, streams: Int = 0, waiting: Int = 0) {
        self.connections = connections
        self.streams = streams
        self.waiting = waiting
    }
}

/// One ``UpstreamLoopPool`` per event loop of a group.
///
/// The pools share nothing, so the request path takes no lock: the per-target limit is split across
/// the loops, each loop allowing `max(1, maxConnectionsPerTarget / loops)` connections (HTTP/1.1) or
/// streams (h2c) per target. With fewer allowed connections than loops, every loop still gets one, so
/// the effective limit is then the number of loops.
public final class UpstreamPools: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Idle keep-alive connections kept per target and event loop (HTTP/1.1) once a burst is over.
        /// More may be idle for a while: a connection given back is kept (up to the connection limit),
        /// and only those above this count that then stay unused for `surplusIdleTimeout` are closed.
        /// Closing them at once would make a load with more requests in flight than this open and
        /// close connections all the time (connect, TIME_WAIT) as its concurrency moves around it.
        public var maxIdlePerTarget = 64
        /// How long connections above `maxIdlePerTarget` may stay unused before they are closed.
        public var surplusIdleTimeout: TimeAmount = .seconds(5)
        /// Open connections (HTTP/1.1: idle, in use or connecting) or concurrent streams (h2c) per target,
        /// over all event loops; requests past it wait, up to their connect timeout.
        public var maxConnectionsPerTarget = 1024
        /// Requests one HTTP/1.1 connection carries before it is closed.
        public var maxUsesPerConnection = 10_000
        public var upstreamProtocol: UpstreamProtocol = .http1

        public init() {}
    }

    public let configuration: Configuration
    /// Connections (or streams) per target each loop allows.
    public let perLoopLimit: Int
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamLoopPool>]

    /// Callable from any thread, an event loop's included: each loop's pool is made here and sent into a
    /// box that only that loop can open (nothing waits for the loops).
    ///
    /// - Parameter logger: where a failed connection to an `https://` target is reported (at most every
    ///   10 s per target and loop).
    public init(group: any EventLoopGroup, configuration: Configuration, tls: ClientTLSContextBox? = nil, logger: Logger? = nil) {
        let loops = Array(group.makeIterator())
        let perLoop = max(1, configuration.maxConnectionsPerTarget / max(1, loops.count))
        var pools: [ObjectIdentifier: NIOLoopBoundBox<UpstreamLoopPool>] = [:]
        for loop in loops {
            pools[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                UpstreamLoopPool(eventLoop: loop, configuration: configuration, limitPerTarget: perLoop, tls: tls, logger: logger),
                eventLoop: loop)
        }
        self.configuration = configuration
        self.perLoopLimit = perLoop
        self.pools = pools
    }

    /// - Parameter tls: the client TLS of `https://` targets (nil: they fail with
    ///   ``UpstreamPoolError/noTLSContext``).
    public convenience init(group: any EventLoopGroup, maxIdlePerTarget: Int = 64, tls: ClientTLSContextBox? = nil, logger: Logger? = nil) {
        var configuration = Configuration()
        configuration.maxIdlePerTarget = maxIdlePerTarget
        self.init(group: group, configuration: configuration, tls: tls, logger: logger)
    }

    /// The pool of the loop the caller runs on (must be one of the group's loops).
    func pool(for eventLoop: any EventLoop) -> UpstreamLoopPool {
        guard let bound = pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop \(eventLoop) is not in the proxy's group")
        }
        return bound.value
    }

    /// Connections, streams and waiting requests per target id, summed over the loops (each loop is
    /// asked on its own thread; meant for a gauge refreshed every second or so, not per request).
    public func statistics() async -> [String: UpstreamPoolStatistics] {
        var total: [String: UpstreamPoolStatistics] = [:]
        for bound in pools.values {
            let part = (try? await bound.eventLoop.submit { bound.value.statistics() }.get()) ?? [:]
            for (id, s) in part {
                total[id, default: UpstreamPoolStatistics()].connections += s.connections
                total[id, default: UpstreamPoolStatistics()].streams += s.streams
                total[id, default: UpstreamPoolStatistics()].waiting += s.waiting
            }
        }
        return total
    }

    /// Closes every idle upstream connection and HTTP/2 connection, and fails waiting requests.
    public func closeAll() {
        for bound in pools.values {
            let loop = bound.eventLoop
            loop.execute { bound.value.closeAll() }
        }
    }
}

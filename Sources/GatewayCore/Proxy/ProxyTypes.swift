import NIOCore
import Synchronization
import NIOHTTP1

/// A backend the proxy forwards to.
public struct UpstreamTarget: Sendable, Hashable, CustomStringConvertible {
    /// A stable name for metrics and logs (a node id, or `host:port`).
    public var id: String
    public var host: String
    public var port: Int
    /// Whether connections to it are TLS (an `https://` backend): HTTP/1.1 over TLS, the certificate
    /// verified against the pools' ``UpstreamPools/tlsContext`` and the host.
    public var tls: Bool

    public init(id: String? = nil, host: String, port: Int, tls: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
        self.id = id ?? "\(host):\(port)"
    }

    public var description: String { id }
    /// The connection pool key.
    var address: String { "\(host):\(port)" }
}

/// What the application decides for one request.
public enum ProxyDecision: Sendable {
    /// Answer locally (errors, cache hits, rate-limited calls).
    case respond(HTTPResponse)
    /// Forward to a backend.
    case forward(ForwardPlan)
}

/// How to forward one request.
public struct ForwardPlan: Sendable {
    public var target: UpstreamTarget
    /// The head sent to the backend; the front has already removed hop-by-hop headers, and adds the
    /// request's ``ProxyRequest/forwarded`` fields (`X-Forwarded-*`, `X-Request-ID`) as it sends it.
    public var head: HTTPRequestHead
    /// The request target sent upstream in place of `head.uri` (nil: `head.uri` as it is). Set apart
    /// from `head` so that a rewritten request does not copy the client's head.
    public var uri: String?
    /// The `Host` sent upstream in place of the client's (nil: the client's is kept).
    public var host: String?
    public var connectTimeout: TimeAmount
    /// From the end of the request to the response head.
    public var responseTimeout: TimeAmount
    /// Headers added to the response sent to the client (rate-limit headers, `X-Cache`).
    public var responseHeaders: HTTPHeaders
    /// Names (lowercased) of the backend's response fields the client does not get; nil for none (no
    /// array to retain per request).
    public var removedResponseFields: [String]?
    /// A request body limit below the listener's (`limits.maxBodyBytes`), for this request's API: a body
    /// declared or read past it gets 413 before any backend sees it; nil keeps the listener's.
    public var maxBodyBytes: Int?
    /// Whether a failure before any response byte may be retried on another target (the request is
    /// idempotent and its body, if any, was small enough to keep).
    public var retryable: Bool
    /// Backend answers that are retried like a failure when ``retryable``: the response is dropped
    /// unread (its connection closed) and the request goes to another target.
    public var retryOnStatus: ServerErrorStatuses
    /// Told how the exchange ended (metrics, passive health, latency estimates).
    public var onComplete: (@Sendable (ProxyOutcome) -> Void)?
    /// Told how the exchange ended, with ``observerTag``: for an observer that lives longer than the
    /// request (a route), where a closure capturing the request's values would be allocated per request.
    public var observer: (any ForwardObserver)?
    /// What the observer needs to know about this plan (the engine: the target's index in its route).
    public var observerTag: Int

    /// Every field can be given here: a plan built by one call is made in place, where assigning fields
    /// one by one afterwards cost two copies and two destroys of the whole plan (each retaining or
    /// releasing every reference in it) and a destroy of each `nil` an optional field replaced.
    /// Inlinable, so that the plan is built in the caller's frame rather than copied out to it.
    @inlinable
    public init(
        target: UpstreamTarget, head: HTTPRequestHead, uri: String? = nil, host: String? = nil,
        connectTimeout: TimeAmount = .seconds(2), responseTimeout: TimeAmount = .seconds(30),
        responseHeaders: HTTPHeaders = [:], removedResponseFields: [String]? = nil, maxBodyBytes: Int? = nil, retryable: Bool = false,
        retryOnStatus: ServerErrorStatuses = ServerErrorStatuses(),
        onComplete: (@Sendable (ProxyOutcome) -> Void)? = nil, observer: (any ForwardObserver)? = nil, observerTag: Int = 0
    ) {
        self.target = target
        self.head = head
        self.uri = uri
        self.host = host
        self.connectTimeout = connectTimeout
        self.responseTimeout = responseTimeout
        self.responseHeaders = responseHeaders
        self.removedResponseFields = removedResponseFields
        self.maxBodyBytes = maxBodyBytes
        self.retryable = retryable
        self.retryOnStatus = retryOnStatus
        self.onComplete = onComplete
        self.observer = observer
        self.observerTag = observerTag
    }
}

/// A set of server-error statuses (500–599) as bits: a plan carries it by value, with nothing to
/// retain or allocate per request.
public struct ServerErrorStatuses: Sendable, Hashable {
    private var low: UInt64 = 0  // 500...563
    private var high: UInt64 = 0  // 564...599

    public init() {}

    /// The codes of `codes` in 500...599 (others are left out).
    public init(_ codes: some Sequence<Int>) {
        for code in codes where (500...599).contains(code) {
            let bit = code - 500
            if bit < 64 { low |= 1 << UInt64(bit) } else { high |= 1 << UInt64(bit - 64) }
        }
    }

    public var isEmpty: Bool { low == 0 && high == 0 }

    public func contains(_ code: Int) -> Bool {
        guard (500...599).contains(code) else { return false }
        let bit = code - 500
        return bit < 64 ? low & (1 << UInt64(bit)) != 0 : high & (1 << UInt64(bit - 64)) != 0
    }
}

/// Told how the attempts of the plans it is set on ended (``ForwardPlan/observer``).
public protocol ForwardObserver: AnyObject, Sendable {
    func forwardEnded(_ outcome: ProxyOutcome, tag: Int)
}

/// How an exchange with a backend ended.
public struct ProxyOutcome: Sendable {
    public enum Failure: Sendable, Equatable {
        case connectFailed
        case connectTimeout
        case responseTimeout
        /// The backend closed or reset the connection mid-exchange.
        case upstreamClosed
        /// The client went away before the response completed.
        case clientClosed
        /// The target was at its upstream connection limit for the whole connect timeout; the request
        /// never reached it (our own limit, not a sign the backend is failing).
        case poolExhausted
        /// The backend answered with a status its route retries on another target
        /// (``ForwardPlan/retryOnStatus``); the answer was dropped (``ProxyOutcome/status`` names it).
        case retriedStatus

        /// The failure an upstream connection request ended with.
        init(acquireError error: any Error) {
            switch error {
            case ChannelError.connectTimeout: self = .connectTimeout
            case UpstreamPoolError.connectionLimitReached: self = .poolExhausted
            default: self = .connectFailed
            }
        }
    }

    public var target: UpstreamTarget
    /// The response status, if a response head arrived.
    public var status: HTTPResponseStatus?
    public var failure: Failure?
    /// From sending the request head to receiving the response head. (`TimeAmount`, as every duration
    /// of the data plane: Int64 nanoseconds, where `Duration` would be 128-bit arithmetic per request.)
    public var timeToFirstByte: TimeAmount?
    /// From the decision to the end of the response.
    public var total: TimeAmount
    /// Whether the response head had been relayed to the client before a failure.
    public var responseStarted: Bool
}

/// A router's answer for one request: known at once, or later (after a Redis call, say).
public enum ProxyDecisionResult: Sendable {
    /// Decided on the spot: the front acts on it without a future, a promise and a callback.
    case decided(ProxyDecision)
    /// Decided when the future completes (on any thread; the front hops back to its loop).
    case pending(EventLoopFuture<ProxyDecision>)
}

/// Decides, for each request the front accepts, what to do with it.
public protocol ProxyRouter: Sendable {
    /// Decides for a request. Called on the connection's event loop; answer `.decided` when the answer
    /// needs no I/O.
    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult

    /// After a failure before any response byte on a retryable plan: another plan to try, or nil.
    func retry(after failed: ForwardPlan, failure: ProxyOutcome.Failure, request: ProxyRequest) -> ForwardPlan?

    /// Called once per request when its response is finished (or the client went away), for access
    /// logs and metrics. No default: a router that means to ignore it says so (a default would hide a
    /// signature that no longer matches).
    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount)

    /// Whether each forward's target and time to first byte go into the request's annotations
    /// (``RequestAnnotations/upstream``) for ``completed(_:status:bytesSent:duration:)``: a lock per
    /// forwarded request, so only for a router that logs them. Read once per listener.
    var recordsUpstream: Bool { get }

    /// A tunnel (the connection a request switched to another protocol, WebSocket) closed, `closedBy`
    /// `client` or `backend` (or the tunnel's idle timeout, as `client`), after carrying these bytes
    /// each way over `duration`. Its request was reported to ``completed(_:status:bytesSent:duration:)``
    /// at the switch, with status 101.
    func tunnelClosed(_ request: ProxyRequest, closedBy: String, bytesFromClient: Int, bytesToClient: Int, duration: TimeAmount)
}

extension ProxyRouter {
    public func retry(after failed: ForwardPlan, failure: ProxyOutcome.Failure, request: ProxyRequest) -> ForwardPlan? { nil }
    public var recordsUpstream: Bool { false }
    public func tunnelClosed(_ request: ProxyRequest, closedBy: String, bytesFromClient: Int, bytesToClient: Int, duration: TimeAmount) {}
}

/// A request as the router sees it.
public struct ProxyRequest: Sendable {
    /// The head as received, with hop-by-hop headers and the client's `X-Forwarded-*` and `X-Request-ID`
    /// removed (``forwarded`` has their replacements).
    public var head: HTTPRequestHead
    /// What goes upstream with the head (the client's `X-Forwarded-For` chain included).
    public var forwarded: ForwardedFields
    public var requestID: String
    /// The connecting peer's address (IP), appended to `X-Forwarded-For`.
    public var clientIP: String
    /// `http` or `https`.
    public var scheme: String
    /// The `Host` (HTTP/1) or `:authority` (HTTP/2).
    public var host: String
    public var httpVersion: HTTPVersion
    /// What the router learned while deciding (the API, the client's identity), for its access log.
    public let annotations = RequestAnnotations()
    public var startedAt: NIODeadline
    /// The original client's address when the peer is a trusted proxy that forwarded the request (see
    /// ``AddressRanges/originalClient(chain:)``); nil otherwise.
    public var forwardedClientIP: String? = nil
    /// The protocol an HTTP/1.1 client asks to switch to (`Upgrade: websocket`), forwarded with the
    /// request; when the backend answers 101 the two connections become one byte tunnel. Nil for other
    /// requests.
    public var upgrade: String? = nil
    /// The client's address for per-client limits and logs: the original client behind trusted proxies,
    /// else the peer.
    public var remoteIP: String { forwardedClientIP ?? clientIP }
    /// Whether the request may be replayed (safe or idempotent method, or an Idempotency-Key).
    public var isIdempotent: Bool {
        switch head.method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: return true
        default: return head.headers.contains(name: "Idempotency-Key")
        }
    }
}

/// Facts about one request the router records while deciding and reads back when the request completes
/// (possibly on another thread, hence the lock).
public final class RequestAnnotations: Sendable {
    /// A struct, not a tuple: a tuple holding an existential was copied and destroyed through the
    /// runtime's generic tuple witnesses.
    private struct Fields {
        var route: String?
        var client: String?
        var attachment: (any AnyObject & Sendable)?
        var upstreamTarget: String?
        var upstreamFirstByte: TimeAmount?
        var addedRequestFields: [(String, String)]?
    }

    private let state = Mutex(Fields())

    public init() {}

    /// The API (engine) or node (balancer) that served the request.
    public var route: String? {
        get { state.withLock { $0.route } }
        set { state.withLock { $0.route = newValue } }
    }

    /// The client's identity: an API key id, a JWT subject, or an address; never a secret.
    public var client: String? {
        get { state.withLock { $0.client } }
        set { state.withLock { $0.client = newValue } }
    }

    /// What the router keeps with the request between its decision, retries and completion (the
    /// balancer's record of attempts), so it needs no shared table keyed by request. An object, so that
    /// reading it back as its class is a class cast, not a general dynamic cast.
    public var attachment: (any AnyObject & Sendable)? {
        get { state.withLock { $0.attachment } }
        set { state.withLock { $0.attachment = newValue } }
    }

    /// Request fields the router decided to send upstream with this request (the engine: a token's
    /// claims), kept for every attempt; nil for none.
    public var addedRequestFields: [(String, String)]? {
        get { state.withLock { $0.addedRequestFields } }
        set { state.withLock { $0.addedRequestFields = newValue } }
    }

    /// The backend the last attempt went to (its target id) and its time to the response's first byte
    /// (nil when none came), for a router that ``ProxyRouter/recordsUpstream``.
    public var upstream: (target: String, timeToFirstByte: TimeAmount?)? {
        state.withLock { fields in fields.upstreamTarget.map { ($0, fields.upstreamFirstByte) } }
    }

    public func setUpstream(_ target: String, timeToFirstByte: TimeAmount?) {
        state.withLock {
            $0.upstreamTarget = target
            $0.upstreamFirstByte = timeToFirstByte
        }
    }
}

/// Limits the front enforces on every connection; all on by default.
public struct ProxyLimits: Sendable, Hashable {
    /// Request line plus headers; larger requests get 431.
    public var maxHeaderBytes: Int = 32 * 1024
    /// Request body; larger bodies get 413.
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// Concurrent client connections; more are closed at accept.
    public var maxConnections: Int = 10_000
    /// From connection start (or the end of the previous response) to a complete request head; slower
    /// clients get 408 and are closed.
    public var headerReadTimeout: TimeAmount = .seconds(10)
    /// A request body that brings no byte for this long (while the proxy is reading it) gets 408, or a
    /// close (HTTP/1.1) or stream reset (HTTP/2) once the response has started.
    public var bodyReadTimeout: TimeAmount = .seconds(30)
    /// A connection with nothing in flight and nothing read for this long is closed.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// Bodies of retryable requests up to this size are kept so they can be replayed.
    public var maxReplayBodyBytes: Int = 64 * 1024
    /// HTTP/2: most concurrent streams per connection.
    public var maxConcurrentStreams: Int = 100
    /// A protocol-switched connection (WebSocket) that carries no byte either way for this long is
    /// closed on both sides.
    public var tunnelIdleTimeout: TimeAmount = .seconds(600)

    public init() {}
}

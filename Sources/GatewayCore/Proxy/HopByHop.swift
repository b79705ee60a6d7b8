import NIOHTTP1

/// What a proxy adds to a request it forwards: `X-Forwarded-For` (the client's chain, then the client),
/// `X-Forwarded-Proto`, `X-Forwarded-Host` (when the request named a host) and `X-Request-ID`. Kept
/// apart from the request's head and written as the head goes upstream, so a request answered locally
/// (a cache hit, a refusal) never adds them.
public struct ForwardedFields: Sendable, Equatable {
    public var forwardedFor: String
    public var proto: String
    /// Empty: no `X-Forwarded-Host`.
    public var host: String
    public var requestID: String

    public init(forwardedFor: String, proto: String, host: String, requestID: String) {
        self.forwardedFor = forwardedFor
        self.proto = proto
        self.host = host
        self.requestID = requestID
    }

    /// Each field, in the order they go out (the one list both ``headers`` and ``HTTP1Serializer`` use).
    @inline(__always)
    func forEach(_ body: (_ name: String, _ value: String) -> Void) {
        body("X-Forwarded-For", forwardedFor)
        body("X-Forwarded-Proto", proto)
        if !host.isEmpty { body("X-Forwarded-Host", host) }
        body(RequestID.headerName, requestID)
    }

    /// As header fields, for a head that is built rather than written by ``HTTP1Serializer``.
    public var headers: HTTPHeaders {
        // One block: `HTTPHeaders.add(name:value:)` would check each (constant, ASCII) name byte by byte.
        var fields: [(String, String)] = []
        fields.reserveCapacity(4)
        forEach { fields.append(($0, $1)) }
        return HTTPHeaders(fields)
    }
}

extension HTTPRequestHead {
    /// The head a backend gets, built as a value: `uri` in place of the target, `host` in place of the
    /// `Host` field, the forwarded fields added. For heads that are not written by ``HTTP1Serializer``
    /// (which writes the same rewrites as it serializes, without this copy): HTTP/2 upstream streams and
    /// the engine's cache fetches.
    public func rewrittenForUpstream(uri: String?, host: String?, forwarded: ForwardedFields?) -> HTTPRequestHead {
        var head = self
        if let uri { head.uri = uri }
        if let host { head.headers.replaceOrAdd(name: "Host", value: host) }
        if let forwarded { head.headers.add(contentsOf: forwarded.headers) }
        return head
    }
}

/// Header hygiene for proxies (RFC 9110 §7.6.1): hop-by-hop headers stay on their hop.
public enum HopByHop {
    /// The field the engine names an authenticated client with, toward backends. Only the engine writes
    /// it: every front (engine and balancer, HTTP/1.1 and HTTP/2) drops it from the requests it reads, so
    /// a client cannot send its own and a backend can believe it.
    public static let gatewayClientID = "X-Gateway-Client-ID"

    static let fixed: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Removes hop-by-hop headers, including those `Connection` names (but never `Content-Length`:
    /// message framing is not the client's to remove).
    ///
    /// One pass over the headers finds what to remove, without lower-cased copies of every name; the
    /// usual request has nothing to remove and the usual response only `Connection` itself.
    public static func strip(_ headers: inout HTTPHeaders) {
        var remove: [String] = []
        var sawConnection = false
        for (name, _) in headers where isHopByHop(name) {
            if !remove.contains(where: { equalsIgnoringASCIICase($0, name) }) { remove.append(name) }
            if equalsIgnoringASCIICase(name, "connection") { sawConnection = true }
        }
        guard !remove.isEmpty else { return }
        if sawConnection {
            for token in headers[canonicalForm: "connection"] where !token.isEmpty {
                let named = String(token)
                if equalsIgnoringASCIICase(named, "content-length") { continue }
                if !remove.contains(where: { equalsIgnoringASCIICase($0, named) }) { remove.append(named) }
            }
        }
        for name in remove { headers.remove(name: name) }
    }

    /// Whether `name` is one of the fixed hop-by-hop header names, in any letter case.
    public static func isHopByHop(_ name: String) -> Bool {
        let n = name.utf8.count
        guard n >= 2 && n <= 19 else { return false }  // "te" ... "proxy-authorization"
        for fixedName in fixedNames where fixedName.utf8.count == n {
            if equalsIgnoringASCIICase(name, fixedName) { return true }
        }
        return false
    }

    private static let fixedNames: [String] = Array(fixed)

    /// ASCII case-insensitive equality (header names are ASCII tokens).
    /// Compares the two strings' bytes in place (a native string, small or not, has them contiguous);
    /// going through `UTF8View`'s iterators cost several times as much per call.
    static func equalsIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        let inPlace = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                for i in 0..<x.count where !sameIgnoringASCIICase(x[i], y[i]) { return false }
                return true
            }
        }
        if let inPlace, let equal = inPlace { return equal }
        return a.utf8.elementsEqual(b.utf8, by: sameIgnoringASCIICase)
    }

    /// ``equalsIgnoringASCIICase(_:_:)`` against a literal.
    static func equalsIgnoringASCIICase(_ a: String, _ b: StaticString) -> Bool {
        guard a.utf8.count == b.utf8CodeUnitCount else { return false }
        let y = UnsafeBufferPointer(start: b.utf8Start, count: b.utf8CodeUnitCount)
        if let inPlace = a.utf8.withContiguousStorageIfAvailable({ x in
            for i in 0..<x.count where !sameIgnoringASCIICase(x[i], y[i]) { return false }
            return true
        }) {
            return inPlace
        }
        return a.utf8.elementsEqual(y, by: sameIgnoringASCIICase)
    }

    /// ``equalsIgnoringASCIICase(_:_:)`` for a name read off the wire (its bytes in place).
    static func equalsIgnoringASCIICase(_ a: UnsafeBufferPointer<UInt8>, _ b: String) -> Bool {
        a.count == b.utf8.count && a.elementsEqual(b.utf8, by: sameIgnoringASCIICase)
    }

    @inline(__always)
    private static func sameIgnoringASCIICase(_ x: UInt8, _ y: UInt8) -> Bool {
        x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
    }

    /// The fields a request going upstream carries (``ForwardedFields``): `X-Forwarded-For` is the
    /// client's own chain with the client appended; the client's `X-Forwarded-*` and `X-Request-ID` are
    /// taken out of `headers` (so they are replaced, never duplicated). One pass finds which are present;
    /// the usual request has none.
    ///
    /// `replacing: false` says the headers are known to hold none of these (the HTTP/1.1 parser tells),
    /// which skips the pass over them.
    ///
    /// `trustingClient`: the client is a trusted proxy (``AddressRanges``): its `X-Forwarded-Proto` and
    /// `X-Forwarded-Host` (the first of each) go on instead of this hop's scheme and host.
    public static func takeForwarded(
        _ headers: inout HTTPHeaders, clientIP: String, scheme: String, host: String, requestID: String, replacing: Bool = true,
        trustingClient: Bool = false
    ) -> ForwardedFields {
        var forwardedFor: String?
        var proto = scheme
        var forwardedHost = host
        if replacing {
            var replace: [String] = []
            var keptProto = false
            var keptHost = false
            for (name, value) in headers {
                guard name.utf8.count >= 12, (name.utf8.first ?? 0) | 0x20 == UInt8(ascii: "x") else { continue }
                if equalsIgnoringASCIICase(name, "X-Forwarded-For") {
                    forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value
                    replace.append(name)
                } else if equalsIgnoringASCIICase(name, "X-Forwarded-Proto") {
                    if trustingClient && !keptProto, value == "http" || value == "https" {
                        proto = value
                        keptProto = true
                    }
                    replace.append(name)
                } else if equalsIgnoringASCIICase(name, "X-Forwarded-Host") {
                    if trustingClient && !keptHost && !value.isEmpty {
                        forwardedHost = value
                        keptHost = true
                    }
                    replace.append(name)
                } else if equalsIgnoringASCIICase(name, RequestID.headerName) {
                    replace.append(name)
                }
            }
            for name in replace { headers.remove(name: name) }
        }
        return ForwardedFields(
            forwardedFor: forwardedFor.map { $0 + ", " + clientIP } ?? clientIP, proto: proto, host: forwardedHost, requestID: requestID)
    }

    /// Removes the hop-by-hop headers of a head that did not come from ``HTTP1Parser`` (an HTTP/2
    /// stream) and reads what the proxy needs from it, as the parser would.
    static func requestInfo(stripping headers: inout HTTPHeaders, version: HTTPVersion) -> HTTP1HeadInfo {
        let keepAlive = HTTPRequestHead(version: version, method: .GET, uri: "/", headers: headers).isKeepAlive
        let chunked = headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        strip(&headers)
        headers.remove(name: gatewayClientID)
        var info = HTTP1HeadInfo(keepAlive: keepAlive, chunked: chunked)
        for (name, value) in headers {
            if info.host == nil && equalsIgnoringASCIICase(name, "Host") {
                info.host = value
            } else if info.requestID == nil && equalsIgnoringASCIICase(name, RequestID.headerName) {
                info.requestID = value
            } else if equalsIgnoringASCIICase(name, "X-Forwarded-For") || equalsIgnoringASCIICase(name, "X-Forwarded-Proto")
                || equalsIgnoringASCIICase(name, "X-Forwarded-Host")
            {
                info.hasForwardedHeaders = true
            }
        }
        return info
    }
}

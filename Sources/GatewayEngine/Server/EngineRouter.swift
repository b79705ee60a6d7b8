import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

/// The engine's data-plane decisions: which API a request is for, whether its client may make it (API key
/// or JWT, then the cluster-wide rate limit and quota), whether the cache answers it, and which backend
/// target gets it.
///
/// A keyless API without limits or cache is decided synchronously on the event loop; everything else runs
/// in a task and completes the decision future.
final class EngineRouter: ProxyRouter {
    let holder: RouteTableHolder
    let keyStore: APIKeyStore
    let rateLimiter: RateLimiter
    let cache: ResponseCache
    let pools: UpstreamPools
    let metrics: EngineMetrics
    let accessLog: Logger?
    let logger: Logger
    let maxCachedResponseBytes: Int
    /// Where async decisions run: the event loop of the connection that asked.
    let loopExecutors = EventLoopTaskExecutor.PerLoop()
    let healthPath: String
    let state: EngineState

    init(
        holder: RouteTableHolder, keyStore: APIKeyStore, rateLimiter: RateLimiter, cache: ResponseCache, pools: UpstreamPools,
        metrics: EngineMetrics, accessLog: Logger?, maxCachedResponseBytes: Int, healthPath: String, state: EngineState,
        logger: Logger
    ) {
        self.healthPath = healthPath
        self.state = state
        self.holder = holder
        self.keyStore = keyStore
        self.rateLimiter = rateLimiter
        self.cache = cache
        self.pools = pools
        self.metrics = metrics
        self.accessLog = accessLog
        self.maxCachedResponseBytes = maxCachedResponseBytes
        self.logger = logger
    }

    // MARK: - Decide

    func decide(_ request: ProxyRequest, eventLoop: any EventLoop) -> ProxyDecisionResult {
        metrics.requestStarted()
        let path = Self.path(of: request.head.uri)
        guard Self.isSafe(path) else {
            return .decided(.respond(.error(.badRequest, "request path is not allowed", requestID: request.requestID)))
        }
        if path == healthPath {
            let ready = holder.isLoaded && !state.isDraining
            return .decided(
                .respond(
                    ready
                        ? .rawJSON("{\"status\":\"ok\"}")
                        : .error(.serviceUnavailable, state.isDraining ? "draining" : "not ready", requestID: request.requestID)))
        }
        guard let match = holder.table.match(host: request.host, path: path) else {
            return .decided(.respond(.error(.notFound, "no API matches \(path)", requestID: request.requestID)))
        }
        // The definition's fields are read in place: a copy of the whole definition retains every one of them.
        let route = match.route
        request.annotations.route = route.definition.id
        request.annotations.attachment = apiMetrics(route)
        // Fields every answer of the API carries: its response_headers, and for an allowed origin the CORS
        // fields (empty for most APIs: nothing added, nothing allocated).
        var extraHeaders = route.addedResponseHeaders
        if let rules = route.ipAccess, !rules.permits(request.remoteIP) {
            return .decided(Self.adding(extraHeaders, to: deny(.forbidden, "client address not allowed", reason: "ip_denied", request)))
        }
        // Cross-origin calls: a preflight is answered here, before any credential is asked for (browsers
        // send none with it); other answers to an allowed origin carry its fields.
        if let cors = route.cors {
            if let origin = request.head.headers.first(name: "Origin") {
                if CORSRules.isPreflight(request.head) {
                    return .decided(Self.adding(extraHeaders, to: .respond(cors.preflight(request.head, requestID: request.requestID))))
                }
                extraHeaders.add(contentsOf: cors.responseHeaders(origin: origin))
            } else {
                // The answer differs with Origin: a shared cache must not serve this one to a page.
                extraHeaders.add(name: "Vary", value: "Origin")
            }
        }
        if let methods = route.methods, !methods.allowed.contains(request.head.method.rawValue) {
            var refusal = HTTPResponse.error(
                .methodNotAllowed, "method \(request.head.method.rawValue) not allowed", requestID: request.requestID)
            refusal.headers.add(name: "Allow", value: methods.allow)
            return .decided(Self.adding(extraHeaders, to: .respond(refusal)))
        }
        // A protocol switch (WebSocket) goes to the backend: a cached answer is not one.
        let cacheable =
            route.definition.cache.enabled && route.definition.cache.methods.contains(request.head.method.rawValue) && request.upgrade == nil
        if route.definition.auth.mode == .keyless && route.definition.rateLimit == nil && route.definition.quota == nil {
            if !cacheable { return .decided(forward(match, request, extraHeaders: extraHeaders)) }
            // A hit needs no I/O: answered here, without a task.
            if let hit = cache.cachedHit(
                key: cacheKey(route.definition, request), policy: route.definition.cache, requestHeaders: request.head.headers)
            {
                return .decided(.respond(cachedResponse(hit, extraHeaders: extraHeaders, removing: route.removedResponseFields)))
            }
        }
        // On this connection's event loop (see EventLoopTaskExecutor), not the global executor.
        let promise = eventLoop.makePromise(of: ProxyDecision.self)
        Task(executorPreference: loopExecutors.executor(for: eventLoop)) { [extraHeaders] in
            let decision = await self.decideChecked(match, request, cacheable: cacheable, extraHeaders: extraHeaders, eventLoop: eventLoop)
            // Local refusals (401, 403, 503) carry the fields too: a page can read why it was refused.
            promise.succeed(Self.adding(extraHeaders, to: decision))
        }
        return .pending(promise.futureResult)
    }

    /// A local answer with `extra` (the API's added fields and CORS fields) unless it was built with
    /// them: answers the engine makes itself carry them in ``HTTPResponse/addedHeaders``, and only those.
    static func adding(_ extra: HTTPHeaders, to decision: ProxyDecision) -> ProxyDecision {
        guard !extra.isEmpty, case .respond(var response) = decision, response.addedHeaders.isEmpty else { return decision }
        response.addedHeaders = extra
        return .respond(response)
    }

    private func decideChecked(
        _ match: RouteMatch, _ request: ProxyRequest, cacheable: Bool, extraHeaders routeHeaders: HTTPHeaders, eventLoop: any EventLoop
    ) async -> ProxyDecision {
        let definition = match.route.definition
        // Who is calling.
        var clientID = "ip:" + request.remoteIP
        var policy = definition.rateLimit?.policy
        var quota = definition.quota
        switch definition.auth.mode {
        case .keyless:
            break
        case .apiKey:
            guard let presented = Self.presentedKey(request.head.headers, header: definition.auth.keyHeader) else {
                return deny(.unauthorized, "missing API key", reason: "missing_key", request)
            }
            do {
                switch try await keyStore.lookup(presented) {
                case .unknown:
                    return deny(.unauthorized, "invalid API key", reason: "unknown_key", request)
                case .expired:
                    return deny(.unauthorized, "API key expired", reason: "expired_key", request)
                case .valid(let record):
                    guard record.permits(api: definition.id) else {
                        return deny(.forbidden, "API key not allowed for this API", reason: "api_not_allowed", request)
                    }
                    clientID = "key:" + record.id
                    policy = record.rateLimit ?? policy
                    quota = record.quota ?? quota
                }
            } catch {
                metrics.count("auth_unavailable", "redis")
                logger.debug("API key lookup failed", metadata: ["request.id": "\(request.requestID)", "error": "\(error)"])
                return .respond(.error(.serviceUnavailable, "authentication is temporarily unavailable", requestID: request.requestID))
            }
        case .jwt:
            guard let verifier = match.route.jwtVerifier else {
                return deny(.unauthorized, "JWT not configured for this API", reason: "jwt_unconfigured", request)
            }
            switch await verifier.verify(authorization: request.head.headers.first(name: "Authorization")) {
            case .success(let identity):
                clientID = "jwt:" + identity.clientID
                if !identity.claimFields.isEmpty {
                    request.annotations.addedRequestFields = identity.claimFields.map { ($0.name, Self.headerSafe($0.value)) }
                }
            case .failure(.insufficientScope):
                var refusal = deny(.forbidden, "token lacks a required scope", reason: JWTFailure.insufficientScope.rawValue, request)
                if case .respond(var response) = refusal, let scopes = verifier.settings.requiredScopes {
                    // RFC 6750 §3: which scopes the API needs, so a client can ask its issuer for them.
                    response.headers.add(
                        name: "WWW-Authenticate", value: "Bearer error=\"insufficient_scope\", scope=\"\(scopes.joined(separator: " "))\"")
                    refusal = .respond(response)
                }
                return refusal
            case .failure(.keysUnavailable):
                metrics.count("auth_unavailable", "jwks")
                return .respond(.error(.serviceUnavailable, "authentication is temporarily unavailable", requestID: request.requestID))
            case .failure(let failure):
                return deny(.unauthorized, "invalid token: \(failure.rawValue)", reason: failure.rawValue, request)
            }
        }
        request.annotations.client = clientID
        // How often.
        var extraHeaders = routeHeaders
        if let policy {
            let decision = await rateLimiter.check(
                api: definition.id, client: clientID, policy: policy, quota: quota,
                failMode: definition.rateLimit?.failMode ?? .closed)
            for (name, value) in decision.headers { extraHeaders.add(name: name, value: value) }
            switch decision.outcome {
            case .allowed:
                break
            case .limited(let reason):
                metrics.count("rate_limited", reason.rawValue)
                var response = HTTPResponse.error(
                    .tooManyRequests, reason == .quota ? "quota exceeded" : "rate limit exceeded", requestID: request.requestID)
                response.addedHeaders = extraHeaders
                return .respond(response)
            case .unavailable:
                metrics.count("rate_limit_unavailable", "redis")
                return .respond(.error(.serviceUnavailable, "rate limiting is temporarily unavailable", requestID: request.requestID))
            }
        }
        // From the cache.
        if cacheable {
            return await fromCache(match, request, extraHeaders: extraHeaders, eventLoop: eventLoop)
        }
        return forward(match, request, extraHeaders: extraHeaders)
    }

    private func deny(_ status: HTTPResponseStatus, _ message: String, reason: String, _ request: ProxyRequest) -> ProxyDecision {
        metrics.count("auth_failures", reason)
        var response = HTTPResponse.error(status, message, requestID: request.requestID)
        if status == .unauthorized { response.headers.add(name: "WWW-Authenticate", value: "Bearer") }
        return .respond(response)
    }

    /// The name of the field that tells backends who the client is, on APIs with authentication (the
    /// fronts drop one a client sends).
    static let clientIDHeader = HopByHop.gatewayClientID

    /// The head backends get. On an API with authentication the credential the engine checked is removed
    /// (the API key's header, or `Authorization` when the key or token came in it), unless the API
    /// forwards credentials, and `X-Gateway-Client-ID` names the client (`key:<key id>` or
    /// `jwt:<identity>`; bytes outside visible ASCII percent-encoded; the fronts drop any a client sent).
    /// Then the API's `request_headers` apply: `remove`, then `set` (so a set `Authorization` is the
    /// backend's own credential, sent in place of the client's).
    static func backendHead(_ route: APIRoute, _ request: ProxyRequest) -> HTTPRequestHead {
        guard !route.forwardsHeadAsIs else { return request.head }
        var head = request.head
        let mode = route.definition.auth.mode
        if mode != .keyless {
            if route.definition.auth.forwardCredentials != true {
                let keyHeader = route.definition.auth.keyHeader
                if mode == .apiKey, let key = head.headers.first(name: keyHeader), !key.isEmpty {
                    head.headers.remove(name: keyHeader)
                } else {
                    head.headers.remove(name: "Authorization")
                }
            }
            if let client = request.annotations.client { head.headers.add(name: clientIDHeader, value: headerSafe(client)) }
            // A token's claims as fields: a client's fields of those names never pass.
            if let mapping = route.definition.auth.jwt?.claimsToHeaders, mode == .jwt {
                for field in mapping.values { head.headers.remove(name: field) }
                for (name, value) in request.annotations.addedRequestFields ?? [] { head.headers.add(name: name, value: value) }
            }
        }
        if let rules = route.definition.requestHeaders {
            for name in rules.remove ?? [] { head.headers.remove(name: name) }
            for (name, value) in (rules.set ?? [:]).sorted(by: { $0.key < $1.key }) { head.headers.replaceOrAdd(name: name, value: value) }
        }
        return head
    }

    /// `value` with `%` and every byte outside visible ASCII percent-encoded, fit for a header field.
    static func headerSafe(_ value: String) -> String {
        let visible = { (b: UInt8) in b > 0x20 && b < 0x7F && b != UInt8(ascii: "%") }
        guard !value.utf8.allSatisfy(visible) else { return value }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count * 3)
        for b in value.utf8 {
            if visible(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func presentedKey(_ headers: HTTPHeaders, header: String) -> String? {
        if let key = headers.first(name: header), !key.isEmpty { return key }
        if let auth = headers.first(name: "Authorization"), auth.count > 7, auth.prefix(7).lowercased() == "bearer " {
            return String(auth.dropFirst(7))
        }
        return nil
    }

    // MARK: - Cache

    private func fromCache(_ match: RouteMatch, _ request: ProxyRequest, extraHeaders: HTTPHeaders, eventLoop: any EventLoop) async -> ProxyDecision {
        let definition = match.route.definition
        do {
            let result = try await cache.fetch(key: cacheKey(definition, request), policy: definition.cache, requestHeaders: request.head.headers) {
                try await self.load(match, request, eventLoop: eventLoop)
            }
            return .respond(cachedResponse(result, extraHeaders: extraHeaders, removing: match.route.removedResponseFields))
        } catch let error as UpstreamPools.FetchError {
            let status: HTTPResponseStatus = (error == .responseTimeout || error == .connectTimeout) ? .gatewayTimeout : .badGateway
            return .respond(.error(status, "backend unavailable", requestID: request.requestID))
        } catch let error as NoTarget {
            return .respond(.error(.serviceUnavailable, error.message, requestID: request.requestID))
        } catch {
            return .respond(.error(.badGateway, "backend unavailable", requestID: request.requestID))
        }
    }

    private func cacheKey(_ definition: APIDefinition, _ request: ProxyRequest) -> CacheKey {
        CacheKey(
            apiID: definition.id, method: request.head.method.rawValue, host: request.host, uri: request.head.uri,
            headers: request.head.headers, policy: definition.cache)
    }

    /// The answer for a cache result: `X-Cache`, `Age` on hits, and the rate-limit headers; without the
    /// backend fields the API removes (taken out as it is served, so a changed definition applies to
    /// responses stored before it).
    private func cachedResponse(_ result: ResponseCache.Result, extraHeaders: HTTPHeaders, removing removed: [String]?) -> HTTPResponse {
        metrics.cacheResult(result.status)
        var stored = result.response.headers
        for name in removed ?? [] { stored.remove(name: name) }
        // The stored headers are shared by every answer: the added fields go alongside, not into a copy.
        var added: [(String, String)] = []
        added.reserveCapacity(2 + extraHeaders.count)
        added.append(("X-Cache", result.status.header))
        if result.status == .hit { added.append(("Age", String(result.age.components.seconds))) }
        for (name, value) in extraHeaders { added.append((name, value)) }
        return HTTPResponse(
            status: result.response.status, headers: stored, body: result.response.body, addedHeaders: HTTPHeaders(added))
    }

    private struct NoTarget: Error {
        var message: String
    }

    /// One backend call for the cache, over the pooled upstream connections; a target that refuses is
    /// skipped and the next one tried.
    private func load(_ match: RouteMatch, _ request: ProxyRequest, eventLoop: any EventLoop) async throws -> CachedResponse {
        var tried: Set<Int> = []
        var lastError: any Error = NoTarget(message: "no backend target available")
        for _ in 0..<max(1, match.route.balancer.targets.count) {
            guard let index = match.route.balancer.next(), !tried.contains(index) else { break }
            tried.insert(index)
            let url = match.route.balancer.targets[index]
            let head = upstreamHead(match, request, url: url)
            let timeouts = match.route.definition.timeouts
            let started = NIODeadline.now()
            let target = url.target
            let maxBytes = maxCachedResponseBytes
            do {
                let response = try await eventLoop.flatSubmit {
                    self.pools.fetch(
                        target, head: head, connectTimeout: .milliseconds(Int64(timeouts.connectMilliseconds)),
                        responseTimeout: .milliseconds(Int64(timeouts.responseMilliseconds)), maxResponseBytes: maxBytes,
                        on: eventLoop)
                }.get()
                let took = NIODeadline.now() - started
                metrics.backendResponded(apiMetrics(match.route), duration: took)
                // A cache fill's time is to the whole response (the fetch reads it all).
                if recordsUpstream { request.annotations.setUpstream(target.id, timeToFirstByte: took) }
                var headers = response.headers
                HopByHop.strip(&headers)
                headers.remove(name: "Content-Length")
                return CachedResponse(status: response.status, headers: headers, body: response.body)
            } catch let error as UpstreamPools.FetchError {
                lastError = error
                if error == .connectFailed || error == .connectTimeout {
                    match.route.balancer.markDown(index, for: APIRoute.targetRetryAfter)
                    continue
                }
                throw error
            }
        }
        throw lastError
    }

    // MARK: - Forward

    private func forward(_ match: RouteMatch, _ request: ProxyRequest, extraHeaders: HTTPHeaders) -> ProxyDecision {
        guard let plan = plan(match, request, extraHeaders: extraHeaders, excluding: nil) else {
            return Self.adding(extraHeaders, to: .respond(.error(.serviceUnavailable, "no backend target available", requestID: request.requestID)))
        }
        return .forward(plan)
    }

    private func plan(_ match: RouteMatch, _ request: ProxyRequest, extraHeaders: HTTPHeaders, excluding: UpstreamTarget?) -> ForwardPlan? {
        let balancer = match.route.balancer
        var choice = balancer.next()
        if let excluding, let picked = choice, balancer.targets[picked].target == excluding, balancer.targets.count > 1 {
            choice = balancer.next()
        }
        guard let index = choice else { return nil }
        let route = match.route  // its definition's fields read in place, not copied
        if let excluding, balancer.targets[index].target == excluding { return nil }
        // A keyless API's client head goes as it is (see backendHead); the target and Host are written in its
        // place (no copy of it). The route hears how the attempt ended (see APIRoute.forwardEnded): no
        // closure per request.
        return ForwardPlan(
            target: balancer.targets[index].target, head: Self.backendHead(route, request),
            uri: upstreamURI(match, request, basePath: balancer.targets[index].basePath), host: balancer.targets[index].authority,
            connectTimeout: .milliseconds(Int64(route.definition.timeouts.connectMilliseconds)),
            responseTimeout: .milliseconds(Int64(route.definition.timeouts.responseMilliseconds)),
            responseHeaders: extraHeaders, removedResponseFields: route.removedResponseFields,
            maxBodyBytes: route.definition.maxBodyBytes, retryable: request.isIdempotent && balancer.targets.count > 1,
            retryOnStatus: route.retryOnStatus, observer: route, observerTag: index)
    }

    func retry(after failed: ForwardPlan, failure: ProxyOutcome.Failure, request: ProxyRequest) -> ForwardPlan? {
        guard let match = holder.table.match(host: request.host, path: Self.path(of: request.head.uri)) else { return nil }
        return plan(match, request, extraHeaders: failed.responseHeaders, excluding: failed.target)
    }

    private func upstreamHead(_ match: RouteMatch, _ request: ProxyRequest, url: BackendURL) -> HTTPRequestHead {
        Self.backendHead(match.route, request).rewrittenForUpstream(
            uri: upstreamURI(match, request, basePath: url.basePath), host: url.authority, forwarded: request.forwarded)
    }

    /// The request target at the backend: the API's forwarded path under the target's base path, and the query.
    private func upstreamURI(_ match: RouteMatch, _ request: ProxyRequest, basePath: String) -> String {
        let uri = request.head.uri
        if let q = uri.firstUTF8Index(of: UInt8(ascii: "?")) {
            return match.upstreamPath(basePath: basePath) + uri[q...]
        }
        return match.upstreamPath(basePath: basePath)
    }

    /// The API's request metrics: the route's own (a serving table's routes carry them), else looked up.
    private func apiMetrics(_ route: APIRoute) -> EngineMetrics.API {
        route.metrics ?? metrics.api(route.definition.id)
    }

    // MARK: - Completion

    /// The access log names the backend each request went to and how long it took to answer.
    var recordsUpstream: Bool { accessLog != nil }

    func completed(_ request: ProxyRequest, status: HTTPResponseStatus, bytesSent: Int, duration: TimeAmount) {
        let api = request.annotations.route ?? "-"
        let perAPI = request.annotations.attachment as? EngineMetrics.API ?? metrics.api(api)
        metrics.requestFinished(perAPI, status: Int(status.code), duration: duration)
        guard let accessLog else { return }
        let upstream = request.annotations.upstream
        accessLog.info(
            "request",
            metadata: [
                "request.id": "\(request.requestID)", "api": "\(api)", "client": "\(request.annotations.client ?? "ip:" + request.remoteIP)",
                "http.method": "\(request.head.method.rawValue)", "http.path": "\(Self.path(of: request.head.uri))",
                "http.status": "\(status.code)", "http.bytes": "\(bytesSent)",
                "duration_ms": "\(Self.milliseconds(duration))",
                "upstream": "\(upstream?.target ?? "-")",
                "upstream_ms": "\(upstream?.timeToFirstByte.map(Self.milliseconds) ?? "-")",
            ])
    }

    /// A tunnel's end, as an access log line of its own (its request's line, status 101, came at the switch).
    func tunnelClosed(_ request: ProxyRequest, closedBy: String, bytesFromClient: Int, bytesToClient: Int, duration: TimeAmount) {
        guard let accessLog else { return }
        accessLog.info(
            "tunnel closed",
            metadata: [
                "request.id": "\(request.requestID)", "api": "\(request.annotations.route ?? "-")",
                "client": "\(request.annotations.client ?? "ip:" + request.remoteIP)",
                "http.path": "\(Self.path(of: request.head.uri))", "tunnel.protocol": "\(request.upgrade ?? "-")",
                "tunnel.closed_by": "\(closedBy)", "tunnel.bytes_in": "\(bytesFromClient)", "tunnel.bytes_out": "\(bytesToClient)",
                "duration_ms": "\(Self.milliseconds(duration))",
            ])
    }

    private static func milliseconds(_ amount: TimeAmount) -> String {
        "\(Double(amount.nanoseconds / 1000) / 1000)"
    }

    // MARK: - Paths

    static func path(of uri: String) -> String {
        if let q = uri.firstUTF8Index(of: UInt8(ascii: "?")) { return String(uri[..<q]) }
        return uri
    }

    static func query(of uri: String) -> String {
        if let q = uri.firstUTF8Index(of: UInt8(ascii: "?")) { return String(uri[uri.utf8.index(after: q)...]) }
        return ""
    }

    /// Refuses paths that could reach around a listen-path prefix: dot segments, encoded slashes and
    /// dots, backslashes, and anything not starting with `/`.
    static func isSafe(_ path: String) -> Bool {
        // Nearly every path is ASCII: one pass over its bytes, without the lowercased copy and the split.
        if let safe = path.utf8.withContiguousStorageIfAvailable({ isSafeASCII($0) }), let safe {
            return safe
        }
        return isSafeUnicode(path)
    }

    /// ``isSafe(_:)`` for an all-ASCII path (where bytes and characters coincide); nil for any other.
    static func isSafeASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        for byte in bytes where byte >= 0x80 { return nil }
        guard bytes.first == UInt8(ascii: "/") else { return false }
        let n = bytes.count
        var segmentStart = 0
        for i in 0...n {
            let byte: UInt8 = i < n ? bytes[i] : UInt8(ascii: "/")
            switch byte {
            case UInt8(ascii: "\\"):
                return false
            case UInt8(ascii: "%") where i + 2 < n:
                let first = bytes[i + 1]
                let second = bytes[i + 2] | 0x20  // ASCII lower case
                if first == UInt8(ascii: "2") && (second == UInt8(ascii: "f") || second == UInt8(ascii: "e")) { return false }
                if first == UInt8(ascii: "5") && second == UInt8(ascii: "c") { return false }
            case UInt8(ascii: "/"):
                let length = i - segmentStart
                if (length == 1 || length == 2) && bytes[segmentStart] == UInt8(ascii: ".")
                    && (length == 1 || bytes[segmentStart + 1] == UInt8(ascii: "."))
                {
                    return false
                }
                segmentStart = i + 1
            default:
                break
            }
        }
        return true
    }

    static func isSafeUnicode(_ path: String) -> Bool {
        guard path.hasPrefix("/") else { return false }
        let lower = path.lowercased()
        if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%2e") || path.contains("\\") { return false }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) where segment == ".." || segment == "." {
            return false
        }
        return true
    }
}

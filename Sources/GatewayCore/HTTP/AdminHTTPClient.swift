import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small HTTP/1.1 client for control-plane calls (admin APIs, probes): one connection per request,
/// a deadline on the whole exchange, a bounded response body.
public struct AdminHTTPClient: Sendable {
    public enum ClientError: Error, CustomStringConvertible, Equatable {
        case invalidURL(String)
        case connectFailed(String)
        case timeout(Duration)
        case responseTooLarge(Int)
        case malformedResponse

        public var description: String {
            switch self {
            case .invalidURL(let url): return "not an http:// (or, with a TLS context, https://) URL: \(url)"
            case .connectFailed(let reason): return "cannot connect: \(reason)"
            case .timeout(let d): return "no response within \(d)"
            case .responseTooLarge(let limit): return "response larger than \(limit) bytes"
            case .malformedResponse: return "malformed HTTP response"
            }
        }
    }

    public var timeout: Duration
    public var maxResponseBytes: Int
    /// The client TLS `https://` URLs are reached with (nil: only `http://`).
    public var tls: ClientTLSContextBox?
    let eventLoopGroup: any EventLoopGroup

    public init(
        timeout: Duration = .seconds(5), maxResponseBytes: Int = 16 << 20, tls: ClientTLSContextBox? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
        self.eventLoopGroup = eventLoopGroup
    }

    /// Splits `http://host:port/path` (or `https://…`) into its parts.
    public static func parse(_ url: String) throws(ClientError) -> (host: String, port: Int, path: String, tls: Bool) {
        let tls = url.hasPrefix("https://")
        guard tls || url.hasPrefix("http://") else { throw .invalidURL(url) }
        let rest = url.dropFirst(tls ? "https://".count : "http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var host = String(authority)
        var port = tls ? 443 : 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw .invalidURL(url) }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { throw .invalidURL(url) }
            port = p
        }
        guard !host.isEmpty else { throw .invalidURL(url) }
        return (host, port, path, tls)
    }

    /// Sends one request and returns the whole response.
    public func request(
        _ method: HTTPMethod, _ url: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil
    ) async throws -> HTTPResponse {
        let (host, port, path, tls) = try Self.parse(url)
        if tls && self.tls == nil { throw ClientError.invalidURL(url) }
        let timeout = self.timeout
        return try await withThrowingTaskGroup(of: HTTPResponse.self) { group in
            group.addTask {
                try await exchange(method, host: host, port: port, path: path, tls: tls, headers: headers, body: body)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw ClientError.timeout(timeout)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func exchange(
        _ method: HTTPMethod, host: String, port: Int, path: String, tls: Bool, headers: HTTPHeaders, body: ByteBuffer?
    ) async throws -> HTTPResponse {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        let tlsContext = tls ? self.tls?.current : nil
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(timeout.timeAmount)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tlsContext {
                            try channel.pipeline.syncOperations.addHandler(ClientTLS.handler(context: tlsContext, host: host))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(inboundType: HTTPClientResponsePart.self, outboundType: HTTPClientRequestPart.self))
                    }
                }
        } catch {
            throw ClientError.connectFailed("\(host):\(port): \(error)")
        }
        let maxBytes = maxResponseBytes
        return try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                var head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
                head.headers.replaceOrAdd(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                head.headers.replaceOrAdd(name: "Content-Length", value: String(body?.readableBytes ?? 0))
                // One write for the whole request: a server that answers as soon as it has the head (no
                // body, `Connection: close`) may close before a separate write of the end, which would then
                // fail with the answer on its way.
                var parts: [HTTPClientRequestPart] = [.head(head)]
                if let body { parts.append(.body(.byteBuffer(body))) }
                parts.append(.end(nil))
                try await outbound.write(contentsOf: parts)
                var response: HTTPResponse?
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        response = HTTPResponse(status: h.status, headers: h.headers)
                    case .body(var chunk):
                        guard response != nil else { throw ClientError.malformedResponse }
                        if response!.body.readableBytes + chunk.readableBytes > maxBytes { throw ClientError.responseTooLarge(maxBytes) }
                        response!.body.writeBuffer(&chunk)
                    case .end:
                        guard let response else { throw ClientError.malformedResponse }
                        return response
                    }
                }
                throw ClientError.malformedResponse
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }
}

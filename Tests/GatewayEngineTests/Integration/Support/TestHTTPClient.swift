import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response as a test sees it: status, headers and the whole body.
struct TestResponse: Sendable, CustomStringConvertible {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object, or nil if it is not one.
    var json: [String: any Sendable]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: any Sendable]
    }

    /// A top-level string field of the JSON body.
    func string(_ field: String) -> String? { json?[field] as? String }

    /// Which test backend answered (the `backend` field its JSON carries).
    var backend: String? { string("backend") }

    /// A request header as the backend saw it (the test backend echoes them, lower-cased).
    func echoedHeader(_ name: String) -> String? {
        (json?["headers"] as? [String: any Sendable])?[name.lowercased()] as? String
    }

    func header(_ name: String) -> String? { headers.first(name: name) }

    var description: String { "\(status) \(headers.map { "\($0.name): \($0.value)" }) \(text.prefix(300))" }
}

/// A small HTTP/1.1 client for talking to an engine in tests, independent of the code under test. Unlike
/// `AdminHTTPClient`, it leaves the `Host` header to the caller and can keep a connection open.
enum TestHTTP {
    /// One request on a fresh connection, closed afterwards; the whole exchange is bounded by `timeout`.
    static func send(
        _ method: HTTPMethod = .GET, port: Int, _ path: String, headers: [(String, String)] = [], body: String? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> TestResponse {
        try await withConnection(port: port, timeout: timeout) { connection in
            try await connection.send(method, path, headers: headers, body: body)
        }
    }

    /// Runs `body` with one keep-alive connection to `127.0.0.1:port`; the connection is closed when
    /// `body` returns, or after `timeout` whatever happens (pending reads then fail).
    static func withConnection<T>(
        port: Int, timeout: Duration = .seconds(5), isolation: isolated (any Actor)? = #isolation,
        _ body: (TestHTTPConnection) async throws -> T
    ) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let raw = channel.channel
        let deadline = raw.eventLoop.scheduleTask(in: timeout.timeAmount) { raw.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = TestHTTPConnection(port: port, inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(connection)
        }
    }
}

/// One client connection; requests on it are sent one after another (keep-alive).
final class TestHTTPConnection {
    let port: Int
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    init(
        port: Int, inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) {
        self.port = port
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Sends a request and reads its whole response. `Host` defaults to `127.0.0.1:<port>`; a body gets
    /// a `Content-Length`.
    func send(_ method: HTTPMethod = .GET, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if !head.headers.contains(name: "Host") { head.headers.add(name: "Host", value: "127.0.0.1:\(port)") }
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count)) }
        try await outbound.write(.head(head))
        if let body, !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
        try await outbound.write(.end(nil))
        var response: TestResponse?
        while let part = try await inbound.next() {
            switch part {
            case .head(let h):
                response = TestResponse(status: Int(h.status.code), headers: h.headers, body: [])
            case .body(let chunk):
                response?.body += chunk.readableBytesView
            case .end:
                guard let response else { throw TestHTTPError.malformed }
                return response
            }
        }
        throw TestHTTPError.closedBeforeResponse
    }
}

enum TestHTTPError: Error {
    case malformed
    case closedBeforeResponse
}

/// Parses the HTTP/1.1 responses in `bytes` (as read from a raw socket), in order. Bodies must be
/// framed by `Content-Length`.
func parseRawResponses(_ bytes: [UInt8]) -> [TestResponse] {
    var responses: [TestResponse] = []
    var rest = bytes[...]
    let separator = Array("\r\n\r\n".utf8)
    while let end = rest.firstRange(of: separator) {
        let headText = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { break }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = Int(headers.first(name: "Content-Length") ?? "0") ?? 0
        let bodyStart = end.upperBound
        let bodyEnd = min(rest.endIndex, bodyStart + length)
        responses.append(TestResponse(status: status, headers: headers, body: Array(rest[bodyStart..<bodyEnd])))
        rest = rest[bodyEnd...]
    }
    return responses
}

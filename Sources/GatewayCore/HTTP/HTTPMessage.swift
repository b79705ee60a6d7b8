import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A whole HTTP request as the admin APIs see it (bodies are small and bounded there).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path without the query string, percent-decoding left to handlers.
    public var path: String
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    public var requestID: String
    /// Values of `:name` segments of the matched route.
    public var parameters: [String: String] = [:]
    /// The name of the admin token the call carried (`admin` for `admin.token`, else its name in
    /// `admin.tokensFile`); nil on routes that need none.
    public var caller: String?

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer, requestID: String) {
        self.method = method
        let (path, query) = Self.split(uri: uri)
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.requestID = requestID
    }

    static func split(uri: String) -> (String, [String: String]) {
        guard let q = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: q)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[1])) : ""
            query[key] = value
        }
        return (String(uri[..<q]), query)
    }

    /// Decodes the JSON body, turning decoding failures into a 400 that names the field.
    public func decodeJSON<T: Decodable>(_ type: T.Type) throws(HTTPError) -> T {
        guard body.readableBytes > 0 else {
            throw HTTPError(.badRequest, "request body must be a JSON object")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch let error as DecodingError {
            throw HTTPError(.badRequest, Self.describe(error))
        } catch {
            throw HTTPError(.badRequest, "invalid JSON: \(error)")
        }
    }

    /// A 400-worthy sentence for a decoding failure, naming the field path.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var out = ""
            for key in codingPath {
                if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out.isEmpty ? "body" : out
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(type), got null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "invalid JSON: \(context.debugDescription)" }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "invalid JSON"
        }
    }
}

/// A whole HTTP response.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// Fields written after ``headers``, each replacing any of the same name there. For answers whose
    /// `headers` are shared (a cached response's): adding to them would copy them for every answer.
    public var addedHeaders: HTTPHeaders = [:]

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer(), addedHeaders: HTTPHeaders = [:]) {
        self.status = status
        self.headers = headers
        self.body = body
        self.addedHeaders = addedHeaders
    }

    /// ``headers`` with ``addedHeaders`` applied.
    public var allHeaders: HTTPHeaders {
        var all = headers
        for (name, value) in addedHeaders { all.replaceOrAdd(name: name, value: value) }
        return all
    }

    /// A JSON response from an `Encodable` value.
    public static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: ByteBuffer(bytes: data))
    }

    /// A JSON response from raw JSON text.
    public static func rawJSON(_ text: String, status: HTTPResponseStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: ByteBuffer(string: text))
    }

    /// `{"error": message, "request_id": id}` with the given status.
    public static func error(_ status: HTTPResponseStatus, _ message: String, requestID: String) -> HTTPResponse {
        HTTPResponse(
            status: status, headers: ["Content-Type": "application/json"], body: ByteBuffer(string: errorBody(message, requestID: requestID)))
    }

    /// The JSON error body every service uses.
    public static func errorBody(_ message: String, requestID: String) -> String {
        "{\"error\":\(StructuredLogHandler.jsonString(message)),\"request_id\":\(StructuredLogHandler.jsonString(requestID))}"
    }
}

/// An error a handler throws to answer with a status and message.
public struct HTTPError: Error, Sendable {
    public var status: HTTPResponseStatus
    public var message: String

    public init(_ status: HTTPResponseStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}

extension HTTPRequest {
    /// Metadata for an audit line of an admin change: `fields`, the request id and the caller.
    public func audit(_ fields: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = fields
        metadata["request.id"] = "\(requestID)"
        metadata["admin.caller"] = "\(caller ?? "-")"
        return metadata
    }
}

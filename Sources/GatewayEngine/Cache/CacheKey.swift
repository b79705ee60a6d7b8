import GatewayCore
import NIOCore
import NIOHTTP1

/// What identifies a cached response: API, method, host, path, query and the values of the request
/// headers the API's policy varies on.
struct CacheKey: Sendable, Hashable, CustomStringConvertible {
    var apiID: String
    var method: String
    /// Lower case, without the port.
    var host: String
    var path: String
    /// The raw query, without `?`; empty for none.
    var query: String
    /// The policy's vary headers' values, in policy order (multiple fields joined with `, `).
    var vary: [String]

    init(apiID: String, method: String, host: String, path: String, query: String = "", vary: [String] = []) {
        self.apiID = apiID
        self.method = method
        self.host = host
        self.path = path
        self.query = query
        self.vary = vary
    }

    /// Builds the key for a request under an API's cache policy.
    init(apiID: String, method: String, host: String, uri: String, headers: HTTPHeaders, policy: CachePolicy) {
        let path: String
        let query: String
        if let q = uri.firstUTF8Index(of: UInt8(ascii: "?")) {
            path = String(uri[..<q])
            query = String(uri[uri.utf8.index(after: q)...])
        } else {
            path = uri
            query = ""
        }
        self.init(
            apiID: apiID, method: method, host: RouteTable.normalizedHost(host), path: path, query: query,
            vary: policy.varyHeaders.map { headers[$0].joined(separator: ", ") })
    }

    /// `host/path?query`: the resource, as an exact purge names it (all methods and variants).
    var resource: String { query.isEmpty ? host + path : host + path + "?" + query }

    var description: String {
        "\(method) \(resource)" + (vary.isEmpty ? "" : " [" + vary.joined(separator: " | ") + "]")
    }
}

/// A response as the cache keeps it: status, headers and the whole body.
struct CachedResponse: Sendable, Equatable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer

    init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Bytes this response holds, for the cache's budget.
    var size: Int {
        body.readableBytes + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }
}

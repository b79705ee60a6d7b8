import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1

/// Calls one service's admin API with the bearer token and turns error answers into ``CtlError``s.
struct AdminClient {
    let base: String
    let token: String

    init(base: String, token: String) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.token = token
    }

    /// Sends the request and returns the JSON body of a 2xx answer.
    func call(_ method: HTTPMethod, _ path: String, body: Any? = nil) async throws -> Any {
        var headers: HTTPHeaders = ["Authorization": "Bearer \(token)", "Accept": "application/json"]
        var payload: ByteBuffer?
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            payload = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
        }
        let response: HTTPResponse
        do {
            response = try await AdminHTTPClient(timeout: .seconds(10)).request(method, base + path, headers: headers, body: payload)
        } catch {
            throw CtlError("cannot reach \(base): \(error)")
        }
        let data = Data(response.body.readableBytesView)
        let parsed: Any? = data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data)
        let object: Any = parsed ?? [String: Any]()
        guard (200..<300).contains(Int(response.status.code)) else {
            let message = (object as? [String: Any])?["error"] as? String ?? String(decoding: data, as: UTF8.self)
            throw CtlError("\(method) \(path): \(response.status.code) \(message)")
        }
        return object
    }

    /// Sends raw JSON text (for `apis apply`).
    func send(_ method: HTTPMethod, _ path: String, rawJSON: Data) async throws -> Any {
        let object = try JSONSerialization.jsonObject(with: rawJSON)
        return try await call(method, path, body: object)
    }
}

/// Prints JSON for `--json`.
func printJSON(_ object: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}

/// A plain text table with aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingWhitespace()
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

/// A JSON value as table text.
func cell(_ value: Any?) -> String {
    switch value {
    case nil, is NSNull: return "-"
    // JSON booleans arrive as NSNumbers of type "c"; numbers 0 and 1 also pass `is Bool` (bridging), so
    // numbers are matched before Bool.
    case let n as NSNumber where String(cString: n.objCType) == "c": return n.boolValue ? "yes" : "no"
    case let n as NSNumber:
        let d = n.doubleValue
        return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(format: "%.2f", d)
    case let b as Bool: return b ? "yes" : "no"
    case let s as String: return s.isEmpty ? "-" : s
    case let a as [Any]: return a.map { cell($0) }.joined(separator: ",")
    default: return "\(value!)"
    }
}

import Foundation
import GatewayCore
import GatewayTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// docs/admin-api.yaml against what the services serve.
@Suite(.timeLimit(.minutes(1)))
struct AdminAPIDocTests {
    /// One documented operation.
    struct Operation: Hashable, CustomStringConvertible {
        var method: String
        var path: String
        var description: String { "\(method.uppercased()) \(path)" }
    }

    /// Every operation the document lists for `service` is routed by it (an unknown route answers 404
    /// `no admin route …`, a wrong method 405), and only `/health` and `/ready` answer without the token.
    @Test(arguments: ServiceBinary.allCases)
    func everyDocumentedOperationIsServed(_ service: ServiceBinary) async throws {
        let operations = try Self.documentedOperations()[service, default: []]
        #expect(!operations.isEmpty)
        try await withRedisServer { redis in
            let directory = try makeTemporaryDirectory("ops-api-\(service.rawValue)")
            defer { removeDirectory(directory) }
            let arguments = try NotifyProtocolTests.arguments(for: service, redisPort: redis.port, directory: directory)
            let token = try readSecretFile(directory + "/admin-token")
            let child = try ServiceProcess.launch(try service.path(), arguments, logPath: directory + "/\(service.rawValue).log")
            defer { child.signal(SIGKILL) }
            let port = try await Self.adminPort(of: child)
            for operation in operations.sorted(by: { $0.description < $1.description }) {
                let path = operation.path.replacingOccurrences(of: "{id}", with: "doc-test")
                let body = ["post", "put"].contains(operation.method) ? "{}" : nil
                let (status, text) = try await Self.call(operation.method.uppercased(), port: port, path: path, token: token, body: body)
                #expect(!(status == 404 && text.contains("no admin route")), "\(service.rawValue): \(operation) is not routed: \(status) \(text)")
                #expect(status != 405, "\(service.rawValue): \(operation) answers 405: \(text)")
                let open = operation.path == "/health" || operation.path == "/ready"
                let (anonymous, _) = try await Self.call(operation.method.uppercased(), port: port, path: path, token: nil, body: body)
                if open {
                    #expect(anonymous != 401, "\(service.rawValue): \(operation) should not need the token")
                } else {
                    #expect(anonymous == 401, "\(service.rawValue): \(operation) answered \(anonymous) without the token")
                }
            }
            child.signal(SIGTERM)
            _ = try await child.waitForExit(timeout: .seconds(10))
        }
    }

    /// Every route the engine's and balancer's admin code adds is in the document.
    @Test func everyRouteInTheCodeIsDocumented() throws {
        let documented = Set(try Self.documentedOperations().values.flatMap { $0 }.map(\.description))
        let sources = [
            "Sources/GatewayCore/HTTP/StandardRoutes.swift", "Sources/GatewayEngine/Server/EngineAdminAPI.swift",
            "Sources/EdgeBalancer/Admin/BalancerAdminRoutes.swift",
        ]
        var routes = Set<String>()
        let pattern = #/router\.add\(\.([A-Z]+), "([^"]+)"/#
        for source in sources {
            let text = try String(contentsOfFile: PackageRoot.path + "/" + source, encoding: .utf8)
            for match in text.matches(of: pattern) {
                var path = String(match.output.2).replacingOccurrences(of: ":id", with: "{id}")
                // BalancerAdminRoutes adds drain and undrain in a loop over ("drain", true), ("undrain", false).
                let expanded = path.contains("\\(path)") ? ["drain", "undrain"].map { path.replacingOccurrences(of: "\\(path)", with: $0) } : [path]
                for p in expanded {
                    path = p
                    routes.insert("\(match.output.1) \(path)")
                }
            }
        }
        #expect(routes.count >= 20, "found only \(routes.sorted())")
        #expect(routes.subtracting(documented).isEmpty, "routes missing from docs/admin-api.yaml: \(routes.subtracting(documented).sorted())")
    }

    // MARK: Helpers

    /// The operations of docs/admin-api.yaml by service: paths without their own `servers` are served by
    /// all three; the others by the service their `servers` entry names.
    static func documentedOperations() throws -> [ServiceBinary: Set<Operation>] {
        let text = try String(contentsOfFile: PackageRoot.path + "/docs/admin-api.yaml", encoding: .utf8)
        var result: [ServiceBinary: Set<Operation>] = [:]
        var inPaths = false
        var path: String?
        var services: [ServiceBinary] = ServiceBinary.allCases
        var methods: [String] = []
        func flush() {
            guard let path else { return }
            for service in services {
                for method in methods { result[service, default: []].insert(Operation(method: method, path: path)) }
            }
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                if inPaths { flush(); path = nil }
                inPaths = line == "paths:"
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") {
                flush()
                path = String(line.dropFirst(2).dropLast())
                services = ServiceBinary.allCases
                methods = []
            } else if line.hasPrefix("    servers:") {
                services = ServiceBinary.allCases.filter { line.contains("description: \($0.rawValue)") }
            } else if let method = ["get", "put", "post", "patch", "delete"].first(where: { line == "    \($0):" }) {
                methods.append(method)
            }
        }
        flush()
        return result
    }

    /// The admin port the service logged (`admin listener ready admin.address=127.0.0.1:PORT`).
    static func adminPort(of child: ServiceProcess) async throws -> Int {
        var port: Int?
        try await waitUntil("\(child.name) to log its admin address", timeout: .seconds(20)) {
            guard let line = child.output.split(separator: "\n").first(where: { $0.contains("admin listener ready") }),
                let range = line.range(of: "admin.address=127.0.0.1:")
            else { return false }
            port = Int(line[range.upperBound...].prefix { $0.isNumber })
            return port != nil
        }
        return port!
    }

    /// One HTTP/1.1 request over a fresh connection; the status and the body text.
    static func call(_ method: String, port: Int, path: String, token: String?, body: String?) async throws -> (Int, String) {
        let result = try await ServiceProcess.run(
            which("curl") ?? "/usr/bin/curl",
            ["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method, "http://127.0.0.1:\(port)\(path)"]
                + (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? [])
                + (body.map { ["-H", "Content-Type: application/json", "--data", $0] } ?? []),
            timeout: .seconds(10))
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? -1, lines.dropLast().joined(separator: "\n"))
    }
}

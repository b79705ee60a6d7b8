import ArgumentParser
import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1

/// `gatewayctl health URL`: asks a service's admin listener whether it is alive.
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a service's /health endpoint.")

    @Argument(help: "Admin base URL, e.g. http://127.0.0.1:9101")
    var url: String

    func run() async throws {
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        do {
            let response = try await AdminHTTPClient(timeout: .seconds(5)).request(.GET, base + "/health")
            print(String(buffer: response.body))
            if response.status != .ok { throw ExitCode.failure }
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("gatewayctl: \(base)/health: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

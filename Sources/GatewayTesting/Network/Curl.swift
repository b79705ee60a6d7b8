import Foundation

/// Runs `/usr/bin/curl` with `arguments` without blocking a concurrency thread; returns its exit status
/// and standard output (keep the output small: it is read after curl exits).
public func runCurl(_ arguments: [String], timeout: Duration = .seconds(10)) async throws -> (status: Int32, output: String) {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString).out")
    defer { try? FileManager.default.removeItem(at: output) }
    guard FileManager.default.createFile(atPath: output.path, contents: nil), let handle = FileHandle(forWritingAtPath: output.path) else {
        throw CocoaError(.fileWriteUnknown)
    }
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-s", "-S", "--max-time", String(timeout.components.seconds)] + arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = handle
    process.standardError = FileHandle.nullDevice
    let status: Int32 = try await withTimeout(timeout + .seconds(2), "curl \(arguments.joined(separator: " "))") {
        try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
    }
    let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    return (status, text)
}

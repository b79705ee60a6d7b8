import Foundation

/// Runs a command-line tool to completion without blocking a concurrency thread; returns its exit status
/// and output (standard output, and standard error too when `includeStandardError`). The output goes to
/// a temporary file and is read after the tool exits; a tool still running after `timeout` fails the
/// call with ``TestTimeoutError``.
public func runTool(
    _ executable: String, _ arguments: [String], includeStandardError: Bool = true, timeout: Duration = .seconds(60)
) async throws -> (status: Int32, output: String) {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString).out")
    defer { try? FileManager.default.removeItem(at: output) }
    guard FileManager.default.createFile(atPath: output.path, contents: nil), let handle = FileHandle(forWritingAtPath: output.path) else {
        throw CocoaError(.fileWriteUnknown)
    }
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = handle
    process.standardError = includeStandardError ? handle : FileHandle.nullDevice
    let status: Int32 = try await withTimeout(timeout, "\(executable) \(arguments.joined(separator: " "))") {
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

/// Runs `/usr/bin/curl` with `arguments` (and `--max-time`); returns its exit status and standard output
/// (keep the output small).
public func runCurl(_ arguments: [String], timeout: Duration = .seconds(10)) async throws -> (status: Int32, output: String) {
    try await runTool(
        "/usr/bin/curl", ["-s", "-S", "--max-time", String(timeout.components.seconds)] + arguments, includeStandardError: false,
        timeout: timeout + .seconds(2))
}

import Foundation
import GatewayTesting

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The built `node-agent` binary run as a child process, for what needs process semantics: SIGKILL,
/// SIGTERM, SIGHUP, exit codes.
///
/// It is found beside the test bundle (`swift build --build-tests` builds it there), or at
/// `$NODE_AGENT_BINARY`.
final class AgentProcess {
    let process: Process
    /// Where its stdout and stderr go.
    let logPath: String

    private init(process: Process, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    deinit {
        // Never leave an agent behind, whatever the test did.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    static func binaryPath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["NODE_AGENT_BINARY"], !path.isEmpty { return path }
        var candidates: [String] = []
        if let first = CommandLine.arguments.first {
            let url = URL(fileURLWithPath: first).resolvingSymlinksInPath()
            candidates.append(url.deletingLastPathComponent().appendingPathComponent("node-agent").path)
            // Inside an .xctest bundle (macOS): <bin>/X.xctest/Contents/MacOS/X.
            candidates.append(
                url.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent("node-agent").path)
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/.build-agent/debug/node-agent")
        candidates.append(FileManager.default.currentDirectoryPath + "/.build/debug/node-agent")
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw AgentProcessError.binaryNotFound(candidates)
        }
        return found
    }

    /// Starts `node-agent` with `arguments`, its output going to `logPath`.
    static func launch(_ arguments: [String], logPath: String) throws -> AgentProcess {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw AgentProcessError.cannotWrite(logPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binaryPath())
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try runWithDefaultSignalMask(process)
        try? log.close()
        return AgentProcess(process: process, logPath: logPath)
    }

    var pid: Int32 { process.processIdentifier }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the process to exit and returns its status; fails after `timeout`.
    func waitForExit(timeout: Duration = .seconds(10)) async throws -> Int32 {
        try await waitUntil("node-agent \(pid) to exit", timeout: timeout, interval: .milliseconds(5)) { !self.process.isRunning }
        return process.terminationStatus
    }

    /// The end of its output, for failure messages.
    func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no output)"
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Runs the binary to completion (for `--check-config`, `--version`) and returns status and output.
    static func run(_ arguments: [String], timeout: Duration = .seconds(20)) async throws -> (status: Int32, output: String) {
        let directory = try makeTemporaryDirectory("agent-run")
        defer { removeDirectory(directory) }
        let child = try launch(arguments, logPath: directory + "/out.log")
        let status = try await child.waitForExit(timeout: timeout)
        return (status, (try? String(contentsOfFile: child.logPath, encoding: .utf8)) ?? "")
    }
}

enum AgentProcessError: Error, CustomStringConvertible {
    case binaryNotFound([String])
    case cannotWrite(String)

    var description: String {
        switch self {
        case .binaryNotFound(let tried):
            return "node-agent binary not found (build it with `swift build --build-tests`); tried: \(tried.joined(separator: ", "))"
        case .cannotWrite(let path): return "cannot write \(path)"
        }
    }
}

import Foundation
import GatewayTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The three service binaries the systemd units start.
enum ServiceBinary: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case engine = "gateway-engine"
    case agent = "node-agent"
    case balancer = "edge-balancer"

    var testDescription: String { rawValue }

    /// The built executable: `$GC_BIN_DIR/<name>`, else beside the test bundle (`swift build --build-tests`
    /// puts executables there), else `.build/debug/<name>` under the package root.
    func path() throws -> String {
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["GC_BIN_DIR"], !dir.isEmpty {
            candidates.append(dir + "/" + rawValue)
        }
        if let first = CommandLine.arguments.first {
            let url = URL(fileURLWithPath: first).resolvingSymlinksInPath()
            candidates.append(url.deletingLastPathComponent().appendingPathComponent(rawValue).path)
            // Inside an .xctest bundle (macOS): <bin>/X.xctest/Contents/MacOS/X.
            candidates.append(
                url.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent(rawValue).path)
        }
        candidates.append(PackageRoot.path + "/.build/debug/" + rawValue)
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ServiceProcessError.binaryNotFound(rawValue, candidates)
        }
        return found
    }
}

/// The package's root directory, from this file's place in `Tests/OperabilityTests/Support/`.
enum PackageRoot {
    static let path: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

/// A service binary run as a child process with the environment systemd would give it.
final class ServiceProcess {
    let process: Process
    let name: String
    /// Where its stdout and stderr go.
    let logPath: String

    private init(process: Process, name: String, logPath: String) {
        self.process = process
        self.name = name
        self.logPath = logPath
    }

    deinit {
        // Never leave a service behind, whatever the test did.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Starts `executable` with `arguments`; `environment` is added to this process's environment after
    /// removing any systemd variables (`NOTIFY_SOCKET`, `WATCHDOG_*`) inherited from whoever runs the tests.
    static func launch(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], logPath: String
    ) throws -> ServiceProcess {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw ServiceProcessError.cannotWrite(logPath) }
        var env = ProcessInfo.processInfo.environment
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"] { env[key] = nil }
        env.merge(environment) { _, new in new }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try runWithDefaultSignalMask(process)
        try? log.close()
        return ServiceProcess(process: process, name: URL(fileURLWithPath: executable).lastPathComponent, logPath: logPath)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the process to exit and returns its status; fails after `timeout`.
    func waitForExit(timeout: Duration) async throws -> Int32 {
        try await waitUntil("\(name) (pid \(pid)) to exit", timeout: timeout, interval: .milliseconds(5)) { !self.process.isRunning }
        return process.terminationStatus
    }

    /// Everything it printed so far.
    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The end of its output, for failure messages.
    func logTail(lines: Int = 30) -> String {
        output.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Runs `executable` to completion and returns its status and output.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(20)
    ) async throws
        -> (status: Int32, output: String)
    {
        let directory = try makeTemporaryDirectory("ops-run")
        defer { removeDirectory(directory) }
        let child = try launch(executable, arguments, environment: environment, logPath: directory + "/out.log")
        let status = try await child.waitForExit(timeout: timeout)
        return (status, child.output)
    }
}

enum ServiceProcessError: Error, CustomStringConvertible {
    case binaryNotFound(String, [String])
    case cannotWrite(String)

    var description: String {
        switch self {
        case .binaryNotFound(let name, let tried):
            return "\(name) binary not found (build it with `swift build --build-tests`, or set GC_BIN_DIR); tried: \(tried.joined(separator: ", "))"
        case .cannotWrite(let path): return "cannot write \(path)"
        }
    }
}

/// A fresh directory under `$GC_TEST_TMPDIR` or the system's temporary directory.
func makeTemporaryDirectory(_ prefix: String) throws -> String {
    let root = ProcessInfo.processInfo.environment["GC_TEST_TMPDIR"] ?? NSTemporaryDirectory()
    let path = URL(fileURLWithPath: root).appendingPathComponent("\(prefix)-\(UInt32.random(in: .min ... .max))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// The full path of `name` on `PATH` (or in the usual system directories), if it is there.
func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    return directories.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

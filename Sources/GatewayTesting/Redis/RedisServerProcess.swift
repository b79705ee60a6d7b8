import Foundation
import GatewayCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A real `redis-server` for one test, on a free loopback port, in its own temporary directory.
///
/// Start it with ``start(_:)`` or, better, scope it with ``withRedisServer(_:isolation:_:)`` so it is
/// always killed. It can be stopped and restarted on the same port (to test reconnects), paused with
/// `SIGSTOP` (to test timeouts against a peer that accepts but never answers) and resumed.
///
/// ```swift
/// try await withRedisServer { server in
///     let client = RedisClient(configuration: server.configuration(), logger: logger)
///     try await server.restart()
/// }
/// ```
public actor RedisServerProcess {
    private enum State {
        case running(Process)
        case paused(Process)
        case stopped
    }

    public nonisolated let host = "127.0.0.1"
    public nonisolated let port: Int
    public nonisolated let options: Options
    /// The server's `--dir`: its logs (`redis-N.log`, one per launch) and pid file.
    public nonisolated let directory: String
    private let binary: URL
    private var state: State
    private var launches: Int

    private init(port: Int, directory: String, binary: URL, options: Options, process: Process) {
        self.port = port
        self.directory = directory
        self.binary = binary
        self.options = options
        self.state = .running(process)
        self.launches = 1
    }

    deinit {
        // Last resort if a test forgot ``tearDown()``: never leave a redis-server behind.
        switch state {
        case .running(let process), .paused(let process):
            _ = posixKill(process.processIdentifier, SIGKILL)
        case .stopped:
            break
        }
    }

    // MARK: Starting

    /// Starts a server on a free loopback port and returns once it answers `PING`.
    ///
    /// If another process takes the port between picking and binding it, it tries again on another port.
    public static func start(_ options: Options = Options()) async throws -> RedisServerProcess {
        let binary = try resolve(options.binary)
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try await LoopbackPort.free()
            let directory = try makeDirectory(port: port)
            do {
                let process = try await launch(
                    binary: binary, port: port, directory: directory, options: options, logName: "redis-1.log")
                return RedisServerProcess(
                    port: port, directory: directory, binary: binary, options: options, process: process)
            } catch let error as RedisServerProcessError where error.isAddressInUse {
                try? FileManager.default.removeItem(atPath: directory)
                lastError = error
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
        throw lastError ?? RedisServerProcessError.notRunning
    }

    private static func launch(
        binary: URL, port: Int, directory: String, options: Options, logName: String
    ) async throws -> Process {
        let logPath = directory + "/" + logName
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
            let log = FileHandle(forWritingAtPath: logPath)
        else { throw CocoaError(.fileWriteUnknown) }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments(port: port, directory: directory, options: options)
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        do {
            try runWithDefaultSignalMask(process)
            try? log.close()
            try await waitUntilReady(process, port: port, logPath: logPath, timeout: options.startTimeout)
            return process
        } catch {
            try? log.close()
            if process.isRunning {
                _ = posixKill(process.processIdentifier, SIGKILL)
                _ = await waitForExit(process, timeout: .seconds(5))
            }
            throw error
        }
    }

    /// Ready means: still running, logged that it listens (so the port is really ours, not another
    /// process's), and answers PING (`-NOAUTH` counts: it is serving commands).
    private static func waitUntilReady(_ process: Process, port: Int, logPath: String, timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if !process.isRunning {
                _ = await waitForExit(process, timeout: .seconds(1))
                throw RedisServerProcessError.exited(status: process.terminationStatus, log: tail(of: logPath))
            }
            if let log = try? String(contentsOfFile: logPath, encoding: .utf8), log.contains("Ready to accept connections"),
                let reply = try? await RawTCP.redisPing(port: port, timeout: .milliseconds(500)),
                reply == "+PONG" || reply.hasPrefix("-NOAUTH")
            {
                return
            }
            if clock.now >= deadline {
                throw RedisServerProcessError.notReady(after: timeout, log: tail(of: logPath))
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: Control

    /// The process id while running or paused.
    public var processIdentifier: Int32? {
        switch state {
        case .running(let process), .paused(let process): return process.processIdentifier
        case .stopped: return nil
        }
    }

    public var isRunning: Bool {
        if case .running = state { return true }
        return false
    }

    /// Stops the server (`SIGTERM`, then `SIGKILL` if it lingers) and waits until it has exited. Its clients
    /// see their connections close. Does nothing if already stopped.
    public func stop() async {
        let process: Process
        switch state {
        case .stopped:
            return
        case .paused(let paused):
            // A stopped process does not handle SIGTERM until continued; nothing is lost by killing it.
            state = .stopped
            _ = posixKill(paused.processIdentifier, SIGKILL)
            _ = await Self.waitForExit(paused, timeout: .seconds(10))
            return
        case .running(let running):
            process = running
        }
        state = .stopped
        process.terminate()
        if await !Self.waitForExit(process, timeout: .seconds(5)) {
            _ = posixKill(process.processIdentifier, SIGKILL)
            _ = await Self.waitForExit(process, timeout: .seconds(10))
        }
    }

    /// Kills the server with `SIGKILL`, as a crash would, and waits until it is gone.
    public func kill() async {
        switch state {
        case .stopped:
            return
        case .running(let process), .paused(let process):
            state = .stopped
            _ = Self.signal(process, SIGKILL)
            _ = await Self.waitForExit(process, timeout: .seconds(10))
        }
    }

    /// Stops the server if it runs and starts it again on the same port and directory; returns once it
    /// answers. The data set is empty afterwards (nothing is persisted).
    public func restart() async throws {
        await stop()
        launches += 1
        let process = try await Self.launch(
            binary: binary, port: port, directory: directory, options: options, logName: "redis-\(launches).log")
        state = .running(process)
    }

    /// Freezes the server with `SIGSTOP`: connections stay open and new ones are even accepted by the
    /// kernel, but nothing is answered until ``resume()``. Returns once the process is stopped.
    public func pause() async throws {
        guard case .running(let process) = state else { throw RedisServerProcessError.notRunning }
        guard Self.signal(process, SIGSTOP) else { throw RedisServerProcessError.notRunning }
        state = .paused(process)
        #if os(Linux)
            try await waitUntil("redis-server \(process.processIdentifier) to stop", timeout: .seconds(5), interval: .milliseconds(1)) {
                Self.linuxProcessState(process.processIdentifier) == "T"
            }
        #endif
    }

    /// Continues a paused server with `SIGCONT`.
    public func resume() throws {
        guard case .paused(let process) = state else { throw RedisServerProcessError.notRunning }
        guard Self.signal(process, SIGCONT) else { throw RedisServerProcessError.notRunning }
        state = .running(process)
    }

    /// Stops the server and deletes its directory. ``withRedisServer(_:isolation:_:)`` calls it for you.
    public func tearDown() async {
        await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The end of the current launch's output, for failure messages.
    public func logTail(lines: Int = 30) -> String {
        Self.tail(of: directory + "/redis-\(launches).log", lines: lines)
    }

    // MARK: Addresses

    /// The URL of this server, with the `requirepass` password if there is one.
    public nonisolated var url: RedisURL {
        RedisURL(host: host, port: port, password: options.password)
    }

    /// The URL for a given user, password and database.
    public nonisolated func url(user: String? = nil, password: String? = nil, database: Int = 0) -> RedisURL {
        RedisURL(host: host, port: port, user: user, password: password, database: database)
    }

    /// A client configuration for this server with short timeouts and backoff suited to tests.
    public nonisolated func configuration(url: RedisURL? = nil) -> RedisConfiguration {
        RedisConfiguration.forTesting(url: url ?? self.url)
    }

    // MARK: Helpers

    private static func resolve(_ binary: String) throws -> URL {
        if binary.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw RedisServerProcessError.binaryNotFound(binary)
            }
            return URL(fileURLWithPath: binary)
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(binary)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return URL(fileURLWithPath: candidate) }
        }
        throw RedisServerProcessError.binaryNotFound(binary)
    }

    /// A fresh directory under `$GC_TEST_TMPDIR` (set by scripts/test.sh, which cleans it up) or the
    /// system's temporary directory.
    private static func makeDirectory(port: Int) throws -> String {
        let root = ProcessInfo.processInfo.environment["GC_TEST_TMPDIR"] ?? NSTemporaryDirectory()
        let path = URL(fileURLWithPath: root)
            .appendingPathComponent("gc-redis-\(port)-\(UInt32.random(in: .min ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private static func signal(_ process: Process, _ signal: Int32) -> Bool {
        process.isRunning && posixKill(process.processIdentifier, signal) == 0
    }

    /// Polls until the process has exited; false if it still runs after `timeout`.
    private static func waitForExit(_ process: Process, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning {
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return true
    }

    #if os(Linux)
        /// The state letter from `/proc/<pid>/stat` (`R`, `S`, `T` for stopped, ...).
        private static func linuxProcessState(_ pid: Int32) -> Character? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            return stat[stat.index(after: close)...].first { $0 != " " }
        }
    #endif

    private static func tail(of path: String, lines: Int = 30) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no output at \(path))" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

/// `kill(2)`; named apart so the actor's own ``RedisServerProcess/kill()`` does not hide it.
private func posixKill(_ pid: Int32, _ signal: Int32) -> Int32 {
    kill(pid, signal)
}

extension RedisConfiguration {
    /// A configuration for tests: reconnect backoff short enough that a restarted server is found again
    /// within tens of milliseconds, and timeouts long enough (10 s) that a machine busy building and
    /// testing in parallel does not trip them. Tests of timeouts set their own short ones.
    public static func forTesting(url: RedisURL) -> RedisConfiguration {
        var configuration = RedisConfiguration(url: url)
        configuration.connectTimeout = .seconds(10)
        configuration.commandTimeout = .seconds(10)
        configuration.leaseTimeout = .seconds(10)
        configuration.initialBackoff = .milliseconds(10)
        configuration.maxBackoff = .milliseconds(100)
        configuration.poolSize = 4
        return configuration
    }
}

import Foundation
import GatewayTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The systemd notify protocol as the units rely on it (`Type=notify`, `WatchdogSec=`, `ExecReload=`
/// sending SIGHUP): each real binary, started the way its unit starts it (the example configuration plus
/// `--set admin.tokenFile=…`) with `NOTIFY_SOCKET` naming a datagram socket this test owns.
@Suite(.timeLimit(.minutes(1)))
struct NotifyProtocolTests {
    /// A service says `READY=1` once it serves, pings the watchdog, says `STOPPING=1` on SIGTERM and exits
    /// 0 well within the unit's `TimeoutStopSec`.
    @Test(arguments: ServiceBinary.allCases)
    func readyThenWatchdogThenStoppingAndCleanExit(_ service: ServiceBinary) async throws {
        try await withRunningService(service) { child, notify in
            let ready = try #require(notify.firstIndex(of: "READY=1"))
            #expect(!notify.received("STOPPING=1"), "STOPPING=1 before any SIGTERM: \(notify.messages)")

            // WATCHDOG_USEC=400000: a ping every 200 ms after READY=1.
            try await waitUntil("a WATCHDOG=1 ping after READY=1", timeout: .seconds(5)) {
                notify.poll().dropFirst(ready + 1).contains { $0.split(separator: "\n").contains("WATCHDOG=1") }
            }

            // systemctl stop sends SIGTERM: STOPPING=1 as draining begins, then exit status 0.
            let clock = ContinuousClock()
            let stopAt = clock.now
            child.signal(SIGTERM)
            try await waitUntil("\(service.rawValue) to send STOPPING=1", timeout: .seconds(5)) {
                notify.received("STOPPING=1")
            }
            let status = try await child.waitForExit(timeout: .seconds(10))
            #expect(status == 0, "\(service.rawValue) exited \(status) on SIGTERM; log:\n\(child.logTail())")
            #expect(clock.now - stopAt < .seconds(10))
            #expect(try #require(notify.firstIndex(of: "STOPPING=1")) > ready)
        }
    }

    /// `ExecReload=` sends SIGHUP: the service rereads its configuration, says so, and keeps serving.
    @Test(arguments: ServiceBinary.allCases)
    func reloadsOnSIGHUPAndKeepsRunning(_ service: ServiceBinary) async throws {
        try await withRunningService(service) { child, notify in
            child.signal(SIGHUP)
            try await waitUntil("\(service.rawValue) to log the SIGHUP reload", timeout: .seconds(5)) {
                child.output.contains("SIGHUP: reloading configuration") || !child.isRunning
            }
            try await waitUntil("\(service.rawValue) to finish the reload", timeout: .seconds(5)) {
                child.output.contains("configuration reloaded") || !child.isRunning
            }
            #expect(child.isRunning, "\(service.rawValue) died on SIGHUP (status \(child.process.terminationStatus)); log:\n\(child.logTail())")
            guard child.isRunning else { return }
            #expect(!notify.received("STOPPING=1"), "STOPPING=1 on SIGHUP: \(notify.messages)")
            child.signal(SIGTERM)
            let status = try await child.waitForExit(timeout: .seconds(10))
            #expect(status == 0, "\(service.rawValue) exited \(status) on SIGTERM after a reload; log:\n\(child.logTail())")
        }
    }

    /// A service that cannot serve (its admin port is taken) never says `READY=1` and exits non-zero, so
    /// systemd marks the start failed and `Restart=on-failure` applies.
    @Test(arguments: ServiceBinary.allCases)
    func noReadyWhenTheAdminPortIsTaken(_ service: ServiceBinary) async throws {
        try await withRedisServer { redis in
            let directory = try makeTemporaryDirectory("ops-busy-\(service.rawValue)")
            defer { removeDirectory(directory) }
            try await withFakeTCPServer(.silent) { busy in
                let notify = try NotifySocket()
                let child = try ServiceProcess.launch(
                    try service.path(),
                    try Self.arguments(for: service, redisPort: redis.port, directory: directory) + ["--set", "admin.port=\(busy.port)"],
                    environment: ["NOTIFY_SOCKET": notify.path], logPath: directory + "/\(service.rawValue).log")
                defer { child.signal(SIGKILL) }
                let status = try await child.waitForExit(timeout: .seconds(20))
                #expect(status != 0, "\(service.rawValue) exited 0 without its admin listener; log:\n\(child.logTail())")
                #expect(!notify.received("READY=1"), "READY=1 without an admin listener: \(notify.messages)")
            }
        }
    }

    /// Starts `service` the way its unit does, with a Redis of its own and `NOTIFY_SOCKET` (and
    /// `WATCHDOG_USEC=400000`) set, waits for `READY=1`, runs `body`, and kills whatever is left.
    func withRunningService(
        _ service: ServiceBinary, _ body: (ServiceProcess, NotifySocket) async throws -> Void
    ) async throws {
        try await withRedisServer { redis in
            let directory = try makeTemporaryDirectory("ops-\(service.rawValue)")
            defer { removeDirectory(directory) }
            let notify = try NotifySocket()
            let child = try ServiceProcess.launch(
                try service.path(), try Self.arguments(for: service, redisPort: redis.port, directory: directory),
                environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"],
                logPath: directory + "/\(service.rawValue).log")
            defer { child.signal(SIGKILL) }
            do {
                try await waitUntil("\(service.rawValue) to send READY=1", timeout: .seconds(20)) {
                    notify.received("READY=1") || !child.isRunning
                }
                try #require(notify.received("READY=1"), "no READY=1; messages \(notify.messages); log:\n\(child.logTail())")
                try #require(child.isRunning, "\(service.rawValue) exited; log:\n\(child.logTail())")
                try await body(child, notify)
            } catch let error as TestTimeoutError {
                Issue.record("\(error)\nnotify messages: \(notify.poll())\nlog:\n\(child.logTail())")
            }
        }
    }

    /// The command line the unit uses (`--config <example> --set admin.tokenFile=<credential>`), plus
    /// overrides that keep the test on loopback, on free ports and quick to drain.
    static func arguments(for service: ServiceBinary, redisPort: Int, directory: String) throws -> [String] {
        let token = directory + "/admin-token"
        try "operability-test-token-\(UInt64.random(in: .min ... .max))\n".write(toFile: token, atomically: true, encoding: .utf8)
        var arguments = [
            "--config", PackageRoot.path + "/systemd/\(service.rawValue).yaml",
            "--set", "admin.tokenFile=\(token)",
            "--set", "redis.url=redis://127.0.0.1:\(redisPort)",
            "--set", "admin.port=0",
            "--set", "log.format=logfmt",
            "--set", "log.level=info",
            "--set", "shutdown.deadline=5s",
        ]
        switch service {
        case .engine, .balancer:
            arguments += ["--set", "listen.host=127.0.0.1", "--set", "listen.port=0"]
        case .agent:
            arguments += [
                "--set", "node.id=ops-\(UInt32.random(in: .min ... .max))",
                "--set", "engine.adminURL=http://127.0.0.1:1",
                "--set", "heartbeat.interval=250ms",
                "--set", "drain.deadline=2s",
                "--set", "drain.grace=0s",
                "--set", "state.file=\(directory)/agent.state",
            ]
        }
        return arguments
    }
}

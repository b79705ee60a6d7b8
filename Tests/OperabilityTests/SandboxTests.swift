import Foundation
import GatewayCore
import GatewayTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The services live with the units' system call sandbox (`SystemCallFilter=@system-service`,
/// `MemoryDenyWriteExecute=yes`, `RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX`), applied with the same
/// seccomp rules by `Support/seccomp-sandbox.py` since there is no systemd PID 1 to apply them here.
/// A forbidden system call kills the service with SIGSYS.
@Suite(.timeLimit(.minutes(1)))
struct SandboxTests {
    static let sandbox = PackageRoot.path + "/Tests/OperabilityTests/Support/seccomp-sandbox.py"

    /// Why the sandbox cannot run here, or nil when it can (python3 with the seccomp module, systemd-analyze).
    static let unavailable: String? = {
        guard which("systemd-analyze") != nil else { return "systemd-analyze is not installed (apt-get install systemd)" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return "/usr/bin/python3 is missing" }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        probe.arguments = ["-c", "import seccomp"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return "cannot run /usr/bin/python3" }
        probe.waitUntilExit()
        return probe.terminationStatus == 0 ? nil : "python3-seccomp is not installed (apt-get install python3-seccomp)"
    }()

    /// Starts, serves its admin API (and, for the balancer, a TLS handshake), reloads on SIGHUP and stops
    /// cleanly on SIGTERM, all under the units' seccomp rules.
    @Test(.enabled(if: unavailable == nil, "\(unavailable ?? "")"), arguments: ServiceBinary.allCases)
    func serviceRunsUnderTheUnitsSystemCallFilter(_ service: ServiceBinary) async throws {
        try await withRedisServer { redis in
            let directory = try makeTemporaryDirectory("ops-sandbox-\(service.rawValue)")
            defer { removeDirectory(directory) }
            var arguments = try NotifyProtocolTests.arguments(for: service, redisPort: redis.port, directory: directory)
            if service == .balancer, let openssl = which("openssl") {
                let made = try await ServiceProcess.run(
                    openssl,
                    [
                        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
                    ])
                try #require(made.status == 0, "openssl: \(made.output)")
                arguments += [
                    "--set", "tls.port=0", "--set", "tls.certFile=\(directory)/cert.pem", "--set", "tls.keyFile=\(directory)/key.pem",
                ]
            }
            let token = try readSecretFile(directory + "/admin-token")
            let notify = try NotifySocket()
            let child = try ServiceProcess.launch(
                "/usr/bin/python3", [Self.sandbox, try service.path()] + arguments,
                environment: ["NOTIFY_SOCKET": notify.path], logPath: directory + "/\(service.rawValue).log")
            defer { child.signal(SIGKILL) }

            try await waitUntil("\(service.rawValue) to send READY=1 in the sandbox", timeout: .seconds(20)) {
                notify.received("READY=1") || !child.isRunning
            }
            try #require(child.isRunning, "\(service.rawValue) died in the sandbox (\(Self.describeExit(child))); log:\n\(child.logTail())")

            let port = try await AdminAPIDocTests.adminPort(of: child)
            let (metrics, text) = try await AdminAPIDocTests.call("GET", port: port, path: "/metrics", token: token, body: nil)
            #expect(metrics == 200, "/metrics: \(metrics) \(text.prefix(200))")
            let (health, _) = try await AdminAPIDocTests.call("GET", port: port, path: "/health", token: nil, body: nil)
            #expect(health == 200)

            if service == .balancer, arguments.contains("tls.port=0") {
                // One of the two "listening" ports is the TLS listener: a handshake there must work.
                let ports = child.output.split(separator: "\n").filter { $0.contains("msg=listening") }.compactMap { line in
                    line.range(of: "listen.address=127.0.0.1:").flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
                }
                var handshakes = 0
                for p in ports {
                    let result = try await ServiceProcess.run(
                        which("curl") ?? "/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(p)/"])
                    if result.status == 0 { handshakes += 1 }
                }
                #expect(handshakes == 1, "TLS handshakes on \(ports): \(handshakes); log:\n\(child.logTail())")
            }

            child.signal(SIGHUP)
            try await waitUntil("\(service.rawValue) to reload in the sandbox", timeout: .seconds(5)) {
                child.output.contains("configuration reloaded") || !child.isRunning
            }
            try #require(child.isRunning, "\(service.rawValue) died on SIGHUP in the sandbox (\(Self.describeExit(child))); log:\n\(child.logTail())")

            child.signal(SIGTERM)
            let status = try await child.waitForExit(timeout: .seconds(10))
            #expect(
                child.process.terminationReason == .exit && status == 0,
                "\(service.rawValue) in the sandbox: \(Self.describeExit(child)); log:\n\(child.logTail())")
            #expect(notify.received("STOPPING=1"))
        }
    }

    static func describeExit(_ child: ServiceProcess) -> String {
        guard !child.isRunning else { return "running" }
        let status = child.process.terminationStatus
        if child.process.terminationReason == .uncaughtSignal {
            return status == SIGSYS ? "killed by SIGSYS: a system call outside the units' filter" : "killed by signal \(status)"
        }
        return "exit status \(status)"
    }
}

import Foundation
import GatewayCore
import Testing

/// The systemd units, their example configurations and the install script, checked offline.
@Suite(.timeLimit(.minutes(1)))
struct SystemdUnitTests {
    static let systemdAnalyze = which("systemd-analyze")

    /// `systemd-analyze verify` accepts the three units without a warning. It insists that ExecStart's
    /// binary exists, so it checks copies whose `/usr/local/bin/<name>` points at the built binaries.
    @Test(.enabled(if: systemdAnalyze != nil, "systemd-analyze is not installed (apt-get install systemd; scripts/test.sh does it)"))
    func unitsPassSystemdAnalyzeVerify() async throws {
        let directory = try makeTemporaryDirectory("ops-units")
        defer { removeDirectory(directory) }
        var copies: [String] = []
        for service in ServiceBinary.allCases {
            let text = try String(contentsOfFile: Self.unitPath(service), encoding: .utf8)
            let copy = directory + "/\(service.rawValue).service"
            try text.replacingOccurrences(of: "/usr/local/bin/\(service.rawValue) ", with: try service.path() + " ")
                .write(toFile: copy, atomically: true, encoding: .utf8)
            copies.append(copy)
        }
        let (status, output) = try await ServiceProcess.run(Self.systemdAnalyze!, ["verify"] + copies, environment: ["SYSTEMD_LOG_COLOR": "0"])
        #expect(status == 0, "systemd-analyze verify exited \(status):\n\(output)")
        // Unknown keys and bad values are only warnings (exit 0): there must be none.
        #expect(output.trimmingWhitespace().isEmpty, "systemd-analyze verify warned:\n\(output)")
    }

    /// Each unit says what the services implement and what operations rely on.
    @Test(arguments: ServiceBinary.allCases)
    func unitDeclaresNotifyReloadRestartAndTheCredential(_ service: ServiceBinary) throws {
        let unit = try Unit(path: Self.unitPath(service))
        let name = service.rawValue
        #expect(unit["Service", "Type"] == ["notify"])
        #expect(unit["Service", "NotifyAccess"] == ["main"])
        #expect(
            unit["Service", "ExecStart"]
                == ["/usr/local/bin/\(name) --config /etc/gateway-cluster/\(name).yaml --set admin.tokenFile=%d/admin-token"])
        #expect(unit["Service", "ExecReload"] == ["/bin/kill -HUP $MAINPID"])
        #expect(unit["Service", "Restart"] == ["on-failure"])
        #expect(unit["Service", "WatchdogSec"] == ["10s"])
        #expect(unit["Service", "LoadCredential"] == ["admin-token:/etc/gateway-cluster/admin-token"])
        #expect(unit["Service", "User"] == ["gateway-cluster"])
        #expect(unit["Service", "LimitNOFILE"] == ["65536"])
        #expect(unit["Install", "WantedBy"].first?.split(separator: " ").contains("multi-user.target") == true)
    }

    /// Hardening every unit carries; no capability at all with the example ports (8080/8443 and above).
    @Test(arguments: ServiceBinary.allCases)
    func unitIsHardened(_ service: ServiceBinary) throws {
        let unit = try Unit(path: Self.unitPath(service))
        let yes = [
            "NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
            "ProtectControlGroups", "RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute",
        ]
        for key in yes { #expect(unit["Service", key] == ["yes"], "\(key)") }
        #expect(unit["Service", "ProtectSystem"] == ["strict"])
        #expect(unit["Service", "CapabilityBoundingSet"] == [""])
        #expect(unit["Service", "AmbientCapabilities"] == [""])
        #expect(unit["Service", "RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"])
        #expect(unit["Service", "SystemCallFilter"] == ["@system-service"])
        #expect(unit["Service", "SystemCallArchitectures"] == ["native"])
    }

    /// systemd must not SIGKILL a drain that keeps its deadline: TimeoutStopSec exceeds the example's
    /// shutdown.deadline plus the 5 s cancellation allowance ServiceLauncher adds.
    @Test(arguments: ServiceBinary.allCases)
    func stopTimeoutOutlastsTheDrainDeadline(_ service: ServiceBinary) throws {
        let unit = try Unit(path: Self.unitPath(service))
        let timeout = try #require(unit["Service", "TimeoutStopSec"].first.flatMap(ConfigValidator.parseDuration))
        let yaml = try String(contentsOfFile: PackageRoot.path + "/systemd/\(service.rawValue).yaml", encoding: .utf8)
        let deadline = try #require(Self.yamlValue(yaml, section: "shutdown", key: "deadline").flatMap(ConfigValidator.parseDuration))
        #expect(timeout > deadline + .seconds(5), "TimeoutStopSec \(timeout) vs shutdown.deadline \(deadline)")
    }

    /// node-agent starts after its engine, stops before it (so it drains while the engine serves), and
    /// stops and restarts with it; it has its own state directory.
    @Test func agentIsBoundToItsEngine() throws {
        let unit = try Unit(path: Self.unitPath(.agent))
        #expect(unit["Unit", "BindsTo"] == ["gateway-engine.service"])
        #expect(unit["Unit", "PartOf"] == ["gateway-engine.service"])
        #expect(unit["Unit", "After"].first?.split(separator: " ").contains("gateway-engine.service") == true)
        #expect(unit["Install", "WantedBy"].first?.split(separator: " ").contains("gateway-engine.service") == true)
        #expect(unit["Service", "StateDirectory"] == ["gateway-cluster/node-agent"])
    }

    /// The example configurations are what the units start with: each passes its binary's
    /// `--check-config` given the token file the unit passes.
    @Test(arguments: ServiceBinary.allCases)
    func exampleConfigurationPassesCheckConfig(_ service: ServiceBinary) async throws {
        let directory = try makeTemporaryDirectory("ops-check")
        defer { removeDirectory(directory) }
        try "check-config-token-0123456789\n".write(toFile: directory + "/admin-token", atomically: true, encoding: .utf8)
        let (status, output) = try await ServiceProcess.run(
            try service.path(),
            [
                "--config", PackageRoot.path + "/systemd/\(service.rawValue).yaml", "--set", "admin.tokenFile=\(directory)/admin-token",
                "--check-config",
            ])
        #expect(status == 0, "\(service.rawValue) --check-config:\n\(output)")
        #expect(output.contains("configuration is valid"))
        #expect(!output.contains("warning:"), "every key in the example is one the service reads:\n\(output)")
    }

    /// `--check-config` reads the files the configuration names, as start-up does: a seed file with a bad
    /// definition, or a certificate that is not PEM, fails the check (exit 1, naming the problem); the
    /// example seed file passes.
    @Test func checkConfigReadsTheNamedFiles() async throws {
        let directory = try makeTemporaryDirectory("ops-check-files")
        defer { removeDirectory(directory) }
        let token = ["--set", "admin.token=check-config-token-0123456789"]
        let seed = try String(contentsOfFile: PackageRoot.path + "/docs/examples/apis.yaml", encoding: .utf8)
        try seed.replacingOccurrences(of: "http://127.0.0.1:7002", with: "ftp://127.0.0.1:7002")
            .write(toFile: directory + "/bad-apis.yaml", atomically: true, encoding: .utf8)
        try "not a certificate\n".write(toFile: directory + "/bad.pem", atomically: true, encoding: .utf8)

        let good = try await ServiceProcess.run(
            try ServiceBinary.engine.path(), token + ["--set", "apis.seedFile=\(PackageRoot.path)/docs/examples/apis.yaml", "--check-config"])
        #expect(good.status == 0, "\(good.output)")
        let badSeed = try await ServiceProcess.run(
            try ServiceBinary.engine.path(), token + ["--set", "apis.seedFile=\(directory)/bad-apis.yaml", "--check-config"])
        #expect(badSeed.status == 1)
        #expect(badSeed.output.contains("targets[1].url"), "\(badSeed.output)")
        #expect(!badSeed.output.contains("configuration is valid"))
        let tls = ["--set", "tls.certFile=\(directory)/bad.pem", "--set", "tls.keyFile=\(directory)/bad.pem", "--check-config"]
        let badEngineTLS = try await ServiceProcess.run(try ServiceBinary.engine.path(), token + tls)
        #expect(badEngineTLS.status == 1)
        #expect(badEngineTLS.output.contains("tls.certFile"), "\(badEngineTLS.output)")
        let badBalancerTLS = try await ServiceProcess.run(
            try ServiceBinary.balancer.path(), token + ["--set", "discovery.redis=false", "--set", "nodes.static=id=a,host=h,port=1"] + tls)
        #expect(badBalancerTLS.status == 1)
        #expect(badBalancerTLS.output.contains("tls.certFile"), "\(badBalancerTLS.output)")
    }

    /// scripts/install.sh stages binaries, units (rewritten for the prefix), example configs and a 0600
    /// token under DESTDIR; run again it replaces binaries and units but keeps configs and the token.
    @Test func installScriptStagesFilesAndKeepsExistingConfiguration() async throws {
        let directory = try makeTemporaryDirectory("ops-install")
        defer { removeDirectory(directory) }
        let bin = directory + "/bin"
        let stage = directory + "/stage"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for name in ServiceBinary.allCases.map(\.rawValue) + ["gatewayctl"] {
            try "#!/bin/sh\necho \(name)\n".write(toFile: bin + "/" + name, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/" + name)
        }
        let script = PackageRoot.path + "/scripts/install.sh"
        let arguments = [script, "--destdir", stage, "--bin-dir", bin, "--prefix", "/usr"]

        // --dry-run changes nothing.
        let dry = try await ServiceProcess.run("/bin/bash", arguments + ["--dry-run"])
        #expect(dry.status == 0, "install.sh --dry-run:\n\(dry.output)")
        #expect(!FileManager.default.fileExists(atPath: stage))

        let first = try await ServiceProcess.run("/bin/bash", arguments)
        #expect(first.status == 0, "install.sh:\n\(first.output)")
        #expect(first.output.contains("systemctl daemon-reload"))
        let files = FileManager.default
        for name in ServiceBinary.allCases.map(\.rawValue) + ["gatewayctl"] {
            #expect(files.isExecutableFile(atPath: stage + "/usr/bin/" + name), "\(name) not installed")
        }
        for service in ServiceBinary.allCases {
            let unit = try Unit(path: stage + "/etc/systemd/system/\(service.rawValue).service")
            #expect(unit["Service", "ExecStart"].first?.hasPrefix("/usr/bin/\(service.rawValue) --config /etc/gateway-cluster/") == true)
            #expect(try Self.mode(stage + "/etc/gateway-cluster/\(service.rawValue).yaml") == 0o640)
        }
        let tokenPath = stage + "/etc/gateway-cluster/admin-token"
        #expect(try Self.mode(tokenPath) == 0o600)
        let token = try String(contentsOfFile: tokenPath, encoding: .utf8)
        #expect(token.count >= 16)
        #expect(try Self.mode(stage + "/etc/gateway-cluster") == 0o750)
        #expect(files.fileExists(atPath: stage + "/usr/share/doc/gateway-cluster/examples/gateway-engine.yaml"))

        // Again, after an operator edited a configuration: kept, and so is the token.
        let edited = stage + "/etc/gateway-cluster/node-agent.yaml"
        try "# edited by the operator\n".write(toFile: edited, atomically: true, encoding: .utf8)
        let second = try await ServiceProcess.run("/bin/bash", arguments)
        #expect(second.status == 0, "install.sh (again):\n\(second.output)")
        #expect(try String(contentsOfFile: edited, encoding: .utf8) == "# edited by the operator\n")
        #expect(try String(contentsOfFile: tokenPath, encoding: .utf8) == token)
    }

    /// The release build install.sh runs: the Swift runtime linked statically and no run-time exclusivity
    /// checks, unless asked for (the benchmarks build the same way; docs/operations.md, "Building").
    @Test func installScriptBuildFlags() async throws {
        let script = PackageRoot.path + "/scripts/install.sh"
        let plain = try await ServiceProcess.run("/bin/bash", [script, "--destdir", "/nonexistent-stage", "--dry-run"])
        #expect(plain.status == 0, "install.sh --dry-run:\n\(plain.output)")
        let builds = plain.output.split(separator: "\n").filter { $0.contains("swift build") && $0.contains("--product") }
        #expect(builds.count == 4, "\(plain.output)")
        for line in builds {
            #expect(
                line.contains("-c release") && line.contains("--static-swift-stdlib") && line.contains("-Xswiftc -enforce-exclusivity=unchecked"),
                "\(line)")
        }
        let checked = try await ServiceProcess.run("/bin/bash", [script, "--destdir", "/nonexistent-stage", "--dry-run", "--exclusivity-checks"])
        #expect(checked.status == 0, "install.sh --dry-run --exclusivity-checks:\n\(checked.output)")
        #expect(checked.output.contains("swift build") && !checked.output.contains("enforce-exclusivity"), "\(checked.output)")
        // The benchmarks' default build passes the same flag.
        let lib = try String(contentsOfFile: PackageRoot.path + "/bench/lib.sh", encoding: .utf8)
        #expect(lib.contains("-Xswiftc -enforce-exclusivity=unchecked"))
    }

    /// Package installs work when run as root: `$SUDO DEBIAN_FRONTEND=… apt-get` with SUDO empty runs a
    /// command named `DEBIAN_FRONTEND=…`, so every script puts `env` in front of the assignment. And the
    /// benchmarks' `bench_need` asks apt-get for exactly the missing commands' packages (a stand-in
    /// apt-get on the PATH records what it was asked).
    @Test func aptInstallLinesWorkAsRoot() async throws {
        let root = PackageRoot.path
        var scripts = [root + "/.ci/run"]
        for dir in ["scripts", "bench"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: root + "/" + dir) where name.hasSuffix(".sh") {
                scripts.append(root + "/" + dir + "/" + name)
            }
        }
        var installLines = 0
        for path in scripts {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            for line in text.split(separator: "\n") where line.contains("DEBIAN_FRONTEND=") {
                installLines += 1
                let before = line[..<line.range(of: "DEBIAN_FRONTEND=")!.lowerBound].trimmingCharacters(in: .whitespaces)
                #expect(before.isEmpty || before.hasSuffix("env") || before.hasSuffix("export"), "\(path): \(line)")
            }
        }
        #expect(installLines >= 3, "found only \(installLines) install lines in \(scripts)")  // scripts/cluster.sh, scripts/test.sh, bench/lib.sh

        guard getuid() == 0 else { return }
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("gc-apt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: bin) }
        let log = bin.appendingPathComponent("log").path
        let fake = bin.appendingPathComponent("apt-get")
        try "#!/bin/sh\necho \"$DEBIAN_FRONTEND $*\" >> \(log)\n".write(to: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let run = try await ServiceProcess.run(
            "/bin/bash",
            [
                "-c",
                "PATH=\(bin.path):$PATH; source \(root)/bench/lib.sh; bench_need bash:bash no-such-command-gc:pkg-a pkg-config=no-such-module-gc:pkg-b",
            ])
        #expect(run.status == 0, "\(run.output)")
        let calls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(calls.contains("update -qq"), "\(calls)")
        #expect(calls.contains("noninteractive install -y -qq pkg-a pkg-b"), "\(calls)")
    }

    // MARK: Helpers

    static func unitPath(_ service: ServiceBinary) -> String {
        PackageRoot.path + "/systemd/\(service.rawValue).service"
    }

    static func mode(_ path: String) throws -> Int {
        ((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? NSNumber)?.intValue ?? -1
    }

    /// `key: value` under a top-level `section:` of a simple YAML file (comments stripped).
    static func yamlValue(_ yaml: String, section: String, key: String) -> String? {
        var inSection = false
        for line in yaml.split(separator: "\n") {
            let text = String(line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            if !text.hasPrefix(" ") && !text.trimmingWhitespace().isEmpty {
                inSection = text.trimmingWhitespace() == section + ":"
            } else if inSection, let colon = text.firstIndex(of: ":"), text[..<colon].trimmingWhitespace() == key {
                return text[text.index(after: colon)...].trimmingWhitespace()
            }
        }
        return nil
    }
}

/// A systemd unit file read as `[Section]` → key → values (a key may repeat).
struct Unit {
    private var entries: [String: [String: [String]]] = [:]

    init(path: String) throws {
        var section = ""
        for raw in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let line = raw.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq]).trimmingWhitespace()
            let value = String(line[line.index(after: eq)...]).trimmingWhitespace()
            entries[section, default: [:]][key, default: []].append(value)
        }
    }

    subscript(section: String, key: String) -> [String] {
        entries[section]?[key] ?? []
    }
}

import Foundation

extension RedisServerProcess {
    /// How to start a test `redis-server`.
    ///
    /// Every server persists nothing (`--save ''`, `--appendonly no`), works in its own temporary
    /// directory, listens on 127.0.0.1 only and allows `DEBUG` from loopback (for `DEBUG SLEEP`).
    public struct Options: Sendable {
        /// The default user's password (`--requirepass`); nil leaves the default user open.
        public var password: String?
        /// ACL users to create besides `default`.
        public var users: [User]
        /// More arguments passed to `redis-server` as they are, for example `["--maxclients", "10"]`.
        public var extraArguments: [String]
        /// The program to run: a path, or a name looked up on `PATH`. Defaults to `$REDIS_SERVER_BIN`, else
        /// `redis-server`.
        public var binary: String
        /// How long a start or restart may take before it fails.
        public var startTimeout: Duration

        public init(
            password: String? = nil,
            users: [User] = [],
            extraArguments: [String] = [],
            binary: String? = nil,
            startTimeout: Duration = .seconds(20)
        ) {
            self.password = password
            self.users = users
            self.extraArguments = extraArguments
            self.binary = binary ?? ProcessInfo.processInfo.environment["REDIS_SERVER_BIN"] ?? "redis-server"
            self.startTimeout = startTimeout
        }
    }

    /// An ACL user (`--user name on >password rules...`).
    public struct User: Sendable {
        public var name: String
        public var password: String
        /// ACL rules; the default allows every key, channel and command.
        public var rules: [String]

        public init(name: String, password: String, rules: [String] = ["~*", "&*", "+@all"]) {
            self.name = name
            self.password = password
            self.rules = rules
        }
    }

    /// The command line for one launch.
    static func arguments(port: Int, directory: String, options: Options) -> [String] {
        var arguments = [
            "--port", String(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", directory,
            "--pidfile", directory + "/redis.pid",
            "--daemonize", "no",
            "--logfile", "",
            "--enable-debug-command", "local",
        ]
        if let password = options.password {
            arguments += ["--requirepass", password]
        }
        for user in options.users {
            arguments += ["--user", user.name, "on", ">" + user.password] + user.rules
        }
        return arguments + options.extraArguments
    }
}

/// Why a test `redis-server` could not be started.
public enum RedisServerProcessError: Error, CustomStringConvertible {
    /// The binary is neither a path nor on `PATH`.
    case binaryNotFound(String)
    /// The process exited while starting; `log` is the end of its output.
    case exited(status: Int32, log: String)
    /// It kept running but did not answer within the start timeout.
    case notReady(after: Duration, log: String)
    /// The operation needs a running (or paused) server.
    case notRunning

    public var description: String {
        switch self {
        case .binaryNotFound(let name):
            return "\(name) not found: install redis-server or set REDIS_SERVER_BIN to its path"
        case .exited(let status, let log):
            return "redis-server exited with status \(status) while starting:\n\(log)"
        case .notReady(let after, let log):
            return "redis-server did not answer PING within \(after):\n\(log)"
        case .notRunning:
            return "redis-server is not running"
        }
    }

    /// Whether the port was taken between picking it and redis binding it.
    var isAddressInUse: Bool {
        if case .exited(_, let log) = self { return log.contains("Address already in use") }
        return false
    }
}

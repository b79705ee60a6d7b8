import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The systemd notify protocol (`sd_notify`): datagrams such as `READY=1` to the socket named by
/// `NOTIFY_SOCKET`. Without that variable (not run by systemd with `Type=notify`) every call does nothing.
public struct SystemdNotifier: Sendable {
    public let socketPath: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        self.socketPath = path
    }

    /// Sends `message` (e.g. `READY=1`); returns whether it was delivered. Never blocks (MSG_DONTWAIT).
    @discardableResult
    public func notify(_ message: String) -> Bool {
        guard var path = socketPath else { return false }
        #if os(Linux)
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            // An '@' names an abstract socket: a leading NUL byte.
            let abstract = path.hasPrefix("@")
            if abstract { path.removeFirst() }
            let bytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard bytes.count + (abstract ? 1 : 0) < capacity else { return false }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.initializeMemory(as: UInt8.self, repeating: 0)
                for (i, b) in bytes.enumerated() { raw[i + (abstract ? 1 : 0)] = b }
            }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 1 : 0) + (abstract ? 0 : 1))
            let payload = Array(message.utf8)
            let sent = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), sa, length) }
                }
            }
            return sent == payload.count
        #else
            return false
        #endif
    }

    /// The watchdog interval systemd expects pings within (`WATCHDOG_USEC`), when it set one for us.
    public static func watchdogInterval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], let n = Int32(pid), n != getpid() { return nil }
        return .microseconds(usec)
    }
}

/// Tells systemd `READY=1` once `ready` returns (the service's listeners are up), `STOPPING=1` when a
/// graceful shutdown begins, and `WATCHDOG=1` every half watchdog interval in between when
/// `WatchdogSec` is set.
public struct SystemdNotifyService: Service {
    let notifier: SystemdNotifier
    let ready: @Sendable () async throws -> Void
    let logger: Logger

    public init(notifier: SystemdNotifier = SystemdNotifier(), logger: Logger, ready: @escaping @Sendable () async throws -> Void) {
        self.notifier = notifier
        self.ready = ready
        self.logger = logger
    }

    public func run() async throws {
        try await ready()
        if notifier.notify("READY=1\nSTATUS=serving") {
            logger.debug("told systemd READY=1")
        }
        let interval = SystemdNotifier.watchdogInterval()
        await withGracefulShutdownHandler {
            guard let interval else {
                try? await gracefulShutdown()
                return
            }
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                notifier.notify("WATCHDOG=1")
                try? await Task.sleep(for: interval / 2)
            }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1\nSTATUS=draining")
        }
    }
}

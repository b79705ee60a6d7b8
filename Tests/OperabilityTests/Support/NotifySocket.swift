import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The test's side of the systemd notify protocol: a Unix datagram socket at a path, as systemd names in
/// `NOTIFY_SOCKET` for a `Type=notify` service. Each datagram is one message such as
/// `READY=1\nSTATUS=serving`.
///
/// ```swift
/// let socket = try NotifySocket()
/// // start the service with NOTIFY_SOCKET=socket.path
/// try await waitUntil("READY=1") { socket.received("READY=1") }
/// ```
final class NotifySocket {
    let path: String
    private let directory: String
    private let fd: Int32
    /// Every datagram read so far, in arrival order.
    private(set) var messages: [String] = []

    init() throws {
        // sun_path holds 108 bytes: keep the path short, under /tmp rather than a deep test directory.
        directory = "/tmp/gc-notify-\(UInt32.random(in: .min ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/notify.sock"
        #if os(Linux)
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw NotifySocketError.system("socket", errno) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.initializeMemory(as: UInt8.self, repeating: 0)
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
            let result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard result == 0 else {
                let code = errno
                close(fd)
                throw NotifySocketError.system("bind \(path)", code)
            }
        #else
            throw NotifySocketError.unsupported
        #endif
    }

    deinit {
        close(fd)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Reads every datagram waiting, without blocking, and returns all messages so far.
    @discardableResult
    func poll() -> [String] {
        #if os(Linux)
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                guard n > 0 else { break }
                messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
            }
        #endif
        return messages
    }

    /// Whether a message with the line `line` (e.g. `READY=1`) has arrived.
    func received(_ line: String) -> Bool {
        poll().contains { message in message.split(separator: "\n").contains { $0 == line } }
    }

    /// The index of the first message holding `line`, if one arrived.
    func firstIndex(of line: String) -> Int? {
        poll().firstIndex { message in message.split(separator: "\n").contains { $0 == line } }
    }
}

enum NotifySocketError: Error, CustomStringConvertible {
    case system(String, Int32)
    case unsupported

    var description: String {
        switch self {
        case .system(let call, let code): return "\(call) failed: \(String(cString: strerror(code)))"
        case .unsupported: return "the notify socket is implemented for Linux only"
        }
    }
}

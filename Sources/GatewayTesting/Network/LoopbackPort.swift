import NIOCore
import NIOPosix

/// Loopback ports for test servers.
public enum LoopbackPort {
    /// A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it when we bind port 0, then
    /// we close the socket.
    ///
    /// Another process may take the port before the caller binds it; callers retry with a fresh port
    /// when their bind fails.
    public static func free() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let port = channel.localAddress?.port
        try await channel.close()
        guard let port else { throw LoopbackPortError.noLocalAddress }
        return port
    }
}

enum LoopbackPortError: Error {
    case noLocalAddress
}

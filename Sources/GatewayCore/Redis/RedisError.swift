import NIOCore

/// What went wrong talking to Redis. Each case says what happened in words an operator can act on.
public enum RedisError: Error, Sendable, Equatable {
    /// Nothing listens at the address (ECONNREFUSED), or the connection attempt failed outright.
    case connectionRefused(address: String, reason: String)
    /// The connection attempt did not finish within the connect timeout.
    case connectTimeout(address: String, after: Duration)
    /// The connection closed while commands were in flight or before one could be sent.
    case connectionClosed(address: String)
    /// No reply arrived within the command timeout; the connection was closed.
    case timeout(command: String, after: Duration)
    /// No pooled connection became free before the lease deadline.
    case poolTimeout(after: Duration)
    /// Redis answered with an error reply; `message` is Redis's text.
    case server(command: String, message: String)
    /// AUTH or SELECT failed on connect.
    case authenticationFailed(message: String)
    /// The server sent bytes that are not RESP, or a reply past our limits; the connection was closed.
    case protocolError(String)
    /// The reply had another type than the command promises.
    case unexpectedReply(command: String, reply: String)
    /// The client was shut down.
    case shutdown
    /// The connection URL is not valid.
    case invalidURL(String)
    /// TLS to Redis failed: a certificate or key file could not be used, or the handshake failed (the
    /// server's certificate not trusted or not for its name, or the server not speaking TLS).
    case tls(String)
}

extension RedisError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .connectionRefused(let address, let reason):
            return "redis connection to \(address) refused: \(reason)"
        case .connectTimeout(let address, let after):
            return "redis connection to \(address) timed out after \(after)"
        case .connectionClosed(let address):
            return "redis connection to \(address) closed"
        case .timeout(let command, let after):
            return "redis command \(command) timed out after \(after)"
        case .poolTimeout(let after):
            return "no redis connection free within \(after)"
        case .server(let command, let message):
            return "redis \(command) failed: \(message)"
        case .authenticationFailed(let message):
            return "redis authentication failed: \(message)"
        case .protocolError(let message):
            return "redis protocol error: \(message)"
        case .unexpectedReply(let command, let reply):
            return "redis \(command) gave an unexpected reply: \(reply)"
        case .shutdown:
            return "redis client is shut down"
        case .invalidURL(let message):
            return "invalid redis URL: \(message)"
        case .tls(let message):
            return "redis TLS: \(message)"
        }
    }

    /// The first word of a server error, such as `NOSCRIPT`, `WRONGPASS` or `BUSYGROUP`.
    public var serverErrorCode: Substring? {
        guard case .server(_, let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    /// Whether the error came from reaching Redis at all (as opposed to Redis refusing a command).
    public var isConnectivity: Bool {
        switch self {
        case .connectionRefused, .connectTimeout, .connectionClosed, .timeout, .poolTimeout, .protocolError, .shutdown, .tls:
            return true
        case .server, .authenticationFailed, .unexpectedReply, .invalidURL:
            return false
        }
    }
}

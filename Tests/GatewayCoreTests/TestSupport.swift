import GatewayCore
import GatewayTesting
import NIOCore

extension RedisError {
    /// The case's name, so a test can say which failure it expects without spelling out every field.
    var kind: String {
        switch self {
        case .connectionRefused: "connectionRefused"
        case .connectTimeout: "connectTimeout"
        case .connectionClosed: "connectionClosed"
        case .timeout: "timeout"
        case .poolTimeout: "poolTimeout"
        case .server: "server"
        case .authenticationFailed: "authenticationFailed"
        case .protocolError: "protocolError"
        case .unexpectedReply: "unexpectedReply"
        case .shutdown: "shutdown"
        case .invalidURL: "invalidURL"
        case .tls: "tls"
        }
    }
}

/// Runs `body` and returns the Redis error it threw, or nil if it succeeded; any other error is rethrown.
/// Gives up (failing the test) after `timeout`, so a hang shows up as an error, not a stuck suite.
func redisError<T: Sendable>(
    within timeout: Duration = .seconds(10),
    _ body: @escaping @Sendable () async throws -> T
) async throws -> RedisError? {
    try await withTimeout(timeout, "the Redis call to finish") { () async throws -> RedisError? in
        do {
            _ = try await body()
            return nil
        } catch let error as RedisError {
            return error
        }
    }
}

/// How long `body` takes.
func measure<T>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async rethrows -> (T, Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = try await body()
    return (result, clock.now - start)
}

extension RedisValue {
    static func bulk(_ text: String) -> RedisValue { .bulk(ByteBuffer(string: text)) }
}

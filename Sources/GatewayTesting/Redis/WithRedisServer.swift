import Foundation
import GatewayCore
import Logging

/// Runs `body` with its own freshly started `redis-server`, and tears the server down afterwards whether
/// `body` returns or throws.
///
/// ```swift
/// @Test func somethingWithRedis() async throws {
///     try await withRedisServer { server in
///         // server.url, server.configuration(), server.restart(), server.pause() ...
///     }
/// }
/// ```
public func withRedisServer<T>(
    _ options: RedisServerProcess.Options = .init(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisServerProcess) async throws -> T
) async throws -> T {
    let server = try await RedisServerProcess.start(options)
    do {
        let result = try await body(server)
        await server.tearDown()
        return result
    } catch {
        await server.tearDown()
        throw error
    }
}

/// Runs `body` with a client connected to its own freshly started `redis-server`; shuts both down
/// afterwards.
///
/// - Parameters:
///   - options: how to start the server.
///   - configure: changes to the client configuration (which starts as
///     ``RedisConfiguration/forTesting(url:)`` for the server's URL).
///   - logger: the client's logger.
///   - body: the test, given the client and the server.
public func withRedisClient<T>(
    _ options: RedisServerProcess.Options = .init(),
    configure: (inout RedisConfiguration) -> Void = { _ in },
    logger: Logger = .forTesting(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisClient, RedisServerProcess) async throws -> T
) async throws -> T {
    try await withRedisServer(options) { server in
        var configuration = server.configuration()
        configure(&configuration)
        let client = RedisClient(configuration: configuration, logger: logger)
        do {
            let result = try await body(client, server)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

/// Runs `body` with a client of the Redis named by `GC_TEST_REDIS_URL` (scripts/test.sh starts one for
/// the whole run), or of a private server started for this call when the variable is not set.
///
/// The shared server is shared: tests using it must use keys of their own (see ``uniqueKey(_:)``) and
/// must not flush, restart or pause it.
public func withSharedRedisClient<T>(
    configure: (inout RedisConfiguration) -> Void = { _ in },
    logger: Logger = .forTesting(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisClient) async throws -> T
) async throws -> T {
    guard let text = ProcessInfo.processInfo.environment["GC_TEST_REDIS_URL"], !text.isEmpty else {
        return try await withRedisClient(configure: configure, logger: logger) { client, _ in try await body(client) }
    }
    var configuration = RedisConfiguration.forTesting(url: try RedisURL(parsing: text))
    configure(&configuration)
    let client = RedisClient(configuration: configuration, logger: logger)
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        throw error
    }
}

/// A key no other test uses: `test:<prefix>:<random>`.
public func uniqueKey(_ prefix: String = "key") -> String {
    "test:\(prefix):\(UUID().uuidString.lowercased())"
}

/// Runs `body` with a redis-server that also listens for TLS on `tlsPort` (its plain port stays, for the
/// harness), using ``TestCertificates`` made for this run. `clientCertificates` makes it require a
/// client certificate signed by the test CA (`tls-auth-clients yes`); `named` gives it the certificate
/// that names `localhost` only (no IP address).
public func withTLSRedisServer(
    clientCertificates: Bool = false, named: Bool = false,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisServerProcess, _ tlsPort: Int, TestCertificates) async throws -> Void
) async throws {
    let certificates = try await TestCertificates.make()
    let tlsPort = try await LoopbackPort.free()
    let arguments = [
        "--tls-port", String(tlsPort),
        "--tls-cert-file", named ? certificates.namedServerCertFile : certificates.serverCertFile,
        "--tls-key-file", named ? certificates.namedServerKeyFile : certificates.serverKeyFile,
        "--tls-ca-cert-file", certificates.caFile,
        "--tls-auth-clients", clientCertificates ? "yes" : "no",
    ]
    try await withRedisServer(.init(extraArguments: arguments)) { server in
        try await body(server, tlsPort, certificates)
    }
}

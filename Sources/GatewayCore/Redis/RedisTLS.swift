import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// TLS to Redis (`rediss://` URLs): which certificate authority the client trusts, and the client
/// certificate it shows when Redis asks for one (`tls-auth-clients yes`).
///
/// The server's certificate is always verified: against ``caFile`` when set, else the system's trust
/// store; and it must be for the server: carry ``serverName`` (else the URL's host when that is a DNS
/// name, also sent as SNI) among its DNS names, or the address connected to among its IP addresses.
public struct RedisTLSSettings: Sendable, Hashable {
    /// PEM file of the certificate authorities to trust; nil for the system's.
    public var caFile: String?
    /// PEM files of the client certificate (chain) and its private key; both or neither.
    public var certFile: String?
    public var keyFile: String?
    /// The name the server's certificate must carry, when it is not the URL's host (for example when
    /// Redis is reached by IP address but certified by name).
    public var serverName: String?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.serverName = serverName
    }
}

/// The TLS contexts of the process's Redis connections, one per ``RedisTLSSettings``.
///
/// A context is made (its files read) by the first connection that needs it and shared by the later
/// ones; ``forgetContexts()`` (called on SIGHUP) makes the next connection read the files again, so a
/// rotated certificate is used by new connections without a restart. Open connections keep theirs.
public enum RedisTLS {
    private static let contexts = Mutex<[RedisTLSSettings: NIOSSLContext]>([:])

    /// The context for `settings`, made on first use.
    static func context(for settings: RedisTLSSettings) throws(RedisError) -> NIOSSLContext {
        if let context = contexts.withLock({ $0[settings] }) { return context }
        let context = try makeContext(settings)
        return contexts.withLock { contexts in
            if let existing = contexts[settings] { return existing }
            contexts[settings] = context
            return context
        }
    }

    /// Makes every later connection read its TLS files again.
    public static func forgetContexts() {
        contexts.withLock { $0.removeAll() }
    }

    /// Reads the files of `settings` into a client context (TLS 1.2 or later, full verification). The
    /// errors name the file and what is wrong with it; ``ConfigValidator`` reports them at start-up.
    public static func makeContext(_ settings: RedisTLSSettings) throws(RedisError) -> NIOSSLContext {
        let configuration: TLSConfiguration
        do {
            configuration = try ClientTLS.configuration(caFile: settings.caFile, certFile: settings.certFile, keyFile: settings.keyFile)
        } catch {
            throw .tls(error.description)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw .tls("cannot make a TLS context: \(error)")
        }
    }

    /// Waits for the TLS handshake of a new connection, at most `timeout`; on failure closes the channel
    /// and throws ``RedisError/tls(_:)`` naming the cause.
    static func awaitHandshake(
        _ done: EventLoopPromise<Void>, on channel: any Channel, address: String, timeout: Duration
    ) async throws(RedisError) {
        let timer = channel.eventLoop.scheduleTask(in: timeout.timeAmount) {
            done.fail(RedisError.tls("the handshake with \(address) did not finish within \(timeout) (does it speak TLS on that port?)"))
        }
        do {
            try await done.futureResult.get()
            timer.cancel()
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            switch error {
            case let error as RedisError:
                throw error
            case ChannelError.eof:
                throw .tls("\(address) closed the connection during the TLS handshake (does it speak TLS on that port?)")
            default:
                throw .tls("handshake with \(address) failed: \(error)")
            }
        }
    }
}

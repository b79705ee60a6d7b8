import GatewayCore
import Testing

/// Parsing `redis://` URLs, and keeping their passwords out of text.
@Suite("Redis URL", .timeLimit(.minutes(1)))
struct RedisURLTests {
    /// Every part of a full URL is read, and percent-escapes in credentials are decoded.
    @Test func parsesEveryPart() throws {
        let url = try RedisURL(parsing: "redis://alice:p%40ss%3Aword@cache.internal:6380/2")
        #expect(url == RedisURL(host: "cache.internal", port: 6380, user: "alice", password: "p@ss:word", database: 2))
        #expect(url.address == "cache.internal:6380")
    }

    /// Omitted parts take their defaults: port 6379, database 0, no credentials.
    @Test func appliesDefaults() throws {
        #expect(try RedisURL(parsing: "redis://localhost") == RedisURL(host: "localhost"))
        #expect(try RedisURL(parsing: "redis://localhost/") == RedisURL(host: "localhost"))
        #expect(try RedisURL(parsing: "redis://10.0.0.5:7000") == RedisURL(host: "10.0.0.5", port: 7000))
    }

    /// `secret@host` and `:secret@host` are both the password-only form.
    @Test func passwordOnlyForms() throws {
        let expected = RedisURL(host: "h", password: "secret")
        #expect(try RedisURL(parsing: "redis://secret@h") == expected)
        #expect(try RedisURL(parsing: "redis://:secret@h") == expected)
    }

    /// An unescaped `@` or `:` in the password still parses: the last `@` ends the credentials.
    @Test func unescapedSeparatorsInPassword() throws {
        let url = try RedisURL(parsing: "redis://bob:pa:ss@word@h:1/3")
        #expect(url == RedisURL(host: "h", port: 1, user: "bob", password: "pa:ss@word", database: 3))
    }

    /// IPv6 literals are written in brackets and keep them in the address.
    @Test func ipv6Literals() throws {
        let url = try RedisURL(parsing: "redis://[::1]:7000/1")
        #expect(url == RedisURL(host: "::1", port: 7000, database: 1))
        #expect(url.address == "[::1]:7000")
        #expect(try RedisURL(parsing: "redis://[fe80::1]").port == 6379)
    }

    /// Malformed URLs fail with `.invalidURL` saying what is wrong.
    @Test(arguments: [
        ("http://h:6379", "expected redis://"),
        ("redis://", "missing host"),
        ("redis://:6379", "missing host"),
        ("redis://h:0", "port must be 1-65535"),
        ("redis://h:65536", "port must be 1-65535"),
        ("redis://h:abc", "port must be 1-65535"),
        ("redis://h/x", "database must be a non-negative integer"),
        ("redis://h/-1", "database must be a non-negative integer"),
        ("redis://[::1:6379", "unterminated IPv6 address"),
    ])
    func rejectsMalformedURLs(text: String, reason: String) {
        #expect {
            try RedisURL(parsing: text)
        } throws: { error in
            guard case RedisError.invalidURL(let message) = error else { return false }
            return message.contains(reason)
        }
    }

    /// The description shows user, host, port and database but never the password.
    @Test func descriptionRedactsPassword() throws {
        let url = try RedisURL(parsing: "redis://alice:hunter2@cache:6380/2")
        #expect(url.description == "redis://alice:***@cache:6380/2")
        #expect("\(url)" == "redis://alice:***@cache:6380/2")
        #expect(RedisURL(host: "h", password: "hunter2").description == "redis://:***@h:6379/0")
        #expect(RedisURL(host: "h", user: "bob").description == "redis://bob@h:6379/0")
        #expect(RedisURL(host: "::1").description == "redis://[::1]:6379/0")
        #expect(!"\(RedisError.connectionRefused(address: url.address, reason: "x"))".contains("hunter2"))
    }

    /// `rediss://` is the same URL over TLS, and says so when printed (password still masked).
    @Test func redissMeansTLS() throws {
        let url = try RedisURL(parsing: "rediss://alice:hunter2@redis.internal:6380/2")
        #expect(url.tls)
        #expect(url.host == "redis.internal" && url.port == 6380 && url.user == "alice" && url.password == "hunter2" && url.database == 2)
        #expect(url.description == "rediss://alice:***@redis.internal:6380/2")
        #expect(try RedisURL(parsing: "redis://h").tls == false)
        #expect(url.at(RedisNodeAddress(host: "10.0.0.7", port: 7000)).tls, "cluster nodes keep TLS")
    }

    /// `redacted` masks the password of URL text, with or without a user.
    @Test func redactedMasksPasswordText() {
        #expect(RedisURL.redacted("redis://alice:hunter2@h:1/0") == "redis://alice:***@h:1/0")
        #expect(RedisURL.redacted("redis://hunter2@h") == "redis://:***@h")
        #expect(RedisURL.redacted("redis://h:1") == "redis://h:1")
    }

    /// The error for a malformed URL never repeats its password, even when the scheme is missing.
    @Test(arguments: ["http://alice:hunter2@h:6379", "alice:hunter2@h:6379", "hunter2@h", "rediss:/u:hunter2@h"])
    func invalidURLErrorNeverContainsPassword(text: String) {
        #expect {
            try RedisURL(parsing: text)
        } throws: { error in
            guard case RedisError.invalidURL(let message) = error else { return false }
            return !message.contains("hunter2") && !"\(error)".contains("hunter2")
        }
    }
}

import Foundation
import Testing

@testable import GatewayCore

@Suite struct UnusedConfigKeysTests {
    /// Keys set in the file, on the command line or in the environment that the reading code never asks
    /// for are reported with their source and, for a likely typo, the real key; keys it reads, lists
    /// included, are not.
    @Test func reportsKeysNobodyReadsWithTheNearestRealKey() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unused-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("service.yaml").path
        try """
        admin:
          port: 9100
          tokn: secret-value
        limits:
          maxBodyByte: 5
        nodes:
          static: ["a=127.0.0.1:1", "b=127.0.0.1:2"]
        somethingElse: {deeply: {nested: 1}}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let sources = ConfigSources(
            filePath: file, overrides: ["redis.urll": "redis://x", "log.level": "info"], environmentPrefix: ["gc", "test"],
            environment: ["GC_TEST_REDIS_COMMAND_TIMOUT": "1s", "GC_TEST_REDIS_COMMAND_TIMEOUT": "2s", "OTHER_VAR": "1"])
        var v = ConfigValidator(try await sources.makeReader())
        _ = v.int("admin.port", default: 1)
        _ = v.optionalString("admin.token")
        _ = v.byteSize("limits.maxBodyBytes", default: 1)
        _ = v.stringList("nodes.static", default: [])
        _ = v.string("redis.url", default: "")
        _ = v.string("log.level", default: "")
        _ = v.duration("redis.commandTimeout", default: .seconds(1))
        try v.finish()

        let unused = sources.unusedKeys(consulted: v.consultedKeys)
        #expect(
            unused.map(\.key) == ["GC_TEST_REDIS_COMMAND_TIMOUT", "admin.tokn", "limits.maxBodyByte", "redis.urll", "somethingElse.deeply.nested"])
        let byKey = Dictionary(uniqueKeysWithValues: unused.map { ($0.key, $0) })
        #expect(byKey["admin.tokn"]?.suggestion == "admin.token")
        #expect(byKey["admin.tokn"]?.source == "config file")
        #expect(byKey["limits.maxBodyByte"]?.suggestion == "limits.maxBodyBytes")
        #expect(byKey["redis.urll"]?.source == "--set")
        #expect(byKey["redis.urll"]?.suggestion == "redis.url")
        #expect(byKey["GC_TEST_REDIS_COMMAND_TIMOUT"]?.suggestion == "GC_TEST_REDIS_COMMAND_TIMEOUT")
        #expect(byKey["somethingElse.deeply.nested"]?.suggestion == nil)
        #expect(byKey["admin.tokn"]?.description == "config file sets `admin.tokn`, which this service does not use (did you mean `admin.token`?)")
        // The value is never part of the report (it may be a secret).
        #expect(!unused.contains { $0.description.contains("secret-value") })
    }

    @Test func environmentNamesSplitCamelCaseWords() {
        #expect(ConfigSources.environmentName("redis.commandTimeout", prefix: "GC_ENGINE_") == "GC_ENGINE_REDIS_COMMAND_TIMEOUT")
        #expect(ConfigSources.environmentName("admin.port", prefix: "GC_ENGINE_") == "GC_ENGINE_ADMIN_PORT")
        #expect(ConfigSources.environmentName("limits.maxHeaderBytes", prefix: "P_") == "P_LIMITS_MAX_HEADER_BYTES")
    }
}

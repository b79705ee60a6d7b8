import Foundation
import Testing

/// docs/observability.md names every metric the services create.
struct MetricsDocTests {
    /// Every `Counter`/`Gauge`/`Timer` label in Sources/{GatewayEngine,NodeAgent,EdgeBalancer}, and every
    /// `gc_engine_<kind>_total` made by `EngineMetrics.count(kind, reason)`, and the Redis connection gauges
    /// each `RedisPoolMetrics(prefix:)` makes, and each admin listener's `<prefix>_admin_auth_failures_total`,
    /// appear in the doc.
    @Test func everyMetricIsDocumented() throws {
        let doc = try String(contentsOfFile: PackageRoot.path + "/docs/observability.md", encoding: .utf8)
        var names = Set<String>()
        let fixed = #/(?:Counter|Gauge|Timer)\(label: "([a-z_]+)"/#
        let counted = #/metrics\.count\("([a-z_]+)"/#
        let redisPool = #/RedisPoolMetrics\(prefix: "([a-z_]+)"/#
        let admin = #/metricsPrefix: "([a-z_]+)"/#
        for directory in ["Sources/GatewayEngine", "Sources/NodeAgent", "Sources/EdgeBalancer"] {
            let root = PackageRoot.path + "/" + directory
            let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
            for file in files {
                let source = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
                names.formUnion(source.matches(of: fixed).map { String($0.output.1) })
                names.formUnion(source.matches(of: counted).map { "gc_engine_\($0.output.1)_total" })
                names.formUnion(source.matches(of: admin).map { "\($0.output.1)_admin_auth_failures_total" })
                for match in source.matches(of: redisPool) {
                    names.formUnion(
                        [
                            "redis_connections", "redis_waiters", "redis_cluster_masters", "redis_cluster_node_pools",
                            "redis_cluster_redirects_total", "redis_cluster_layout_reads_total",
                        ]
                        .map { "\(match.output.1)_\($0)" })
                }
            }
        }
        #expect(names.count > 30, "found only \(names.sorted())")
        let missing = names.filter { !doc.contains("`\($0)`") }.sorted()
        #expect(missing.isEmpty, "metrics missing from docs/observability.md: \(missing)")
    }
}

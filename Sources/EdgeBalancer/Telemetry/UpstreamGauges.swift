import CoreMetrics
import GatewayCore
import ServiceLifecycle

/// Samples the upstream pools once a second into per-node gauges: open connections, active h2c
/// streams, and requests waiting at a node's connection limit.
///
/// The pools keep plain per-loop counts (no lock or atomic on the request path); this service sums them
/// by asking each event loop in turn. Gauges are made once per node, the first time the node shows up.
struct UpstreamGauges: Service {
    /// The gauges of one node.
    struct NodeGauges {
        let connections: Gauge
        let streams: Gauge
        let waiting: Gauge

        init(node: String) {
            let dims = [("node", node)]
            connections = Gauge(label: "balancer_upstream_connections", dimensions: dims)
            streams = Gauge(label: "balancer_upstream_streams", dimensions: dims)
            waiting = Gauge(label: "balancer_upstream_pool_waiting", dimensions: dims)
        }

        func record(_ statistics: UpstreamPoolStatistics) {
            connections.record(statistics.connections)
            streams.record(statistics.streams)
            waiting.record(statistics.waiting)
        }
    }

    let pools: UpstreamPools
    var interval: Duration = .seconds(1)

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { [pools, interval] in
                var gauges: [String: NodeGauges] = [:]
                while true {
                    for (node, statistics) in await pools.statistics() {
                        if gauges[node] == nil { gauges[node] = NodeGauges(node: node) }
                        gauges[node]!.record(statistics)
                    }
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }
}

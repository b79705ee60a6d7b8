import CoreMetrics
import GatewayCore
import ServiceLifecycle

/// Samples the front's open connections, HTTP/2 streams and tunnels, and the Redis client's connections, into
/// gauges once a second.
struct FrontGauges: Service {
    let front: HTTPFrontServer
    let tlsFront: HTTPFrontServer?
    let redis: RedisClient?
    let metrics: BalancerMetrics

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { [front, tlsFront, redis, metrics] in
                while true {
                    metrics.activeConnections.record(front.connectionCount + (tlsFront?.connectionCount ?? 0))
                    metrics.activeStreams.record(front.activeStreamCount + (tlsFront?.activeStreamCount ?? 0))
                    metrics.activeTunnels.record(front.openTunnelCount + (tlsFront?.openTunnelCount ?? 0))
                    if let redis { metrics.redisPool.record(redis) }
                    try await Task.sleep(for: .seconds(1))
                }
            }
        } catch is CancellationError {
            // Shutting down.
        }
    }
}

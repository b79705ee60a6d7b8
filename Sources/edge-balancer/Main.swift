import ArgumentParser
import EdgeBalancer
import GatewayCore

@main
struct EdgeBalancerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-balancer",
        abstract: "The region edge: HTTP/1.1 and HTTP/2 front that balances API calls over the engine nodes it discovers in Redis.",
        discussion: """
            Configuration comes from a YAML file (--config), environment variables prefixed GC_BALANCER_ \
            (admin.port is GC_BALANCER_ADMIN_PORT), and --set key=value flags, each overriding the one before. \
            Own keys: listen.host/listen.port (127.0.0.1:8080), region, policy (round_robin, weighted, \
            least_request, peak_ewma), nodes.static, discovery.*, health.*, outlier.*, slowStart.*, ewma.*, \
            locality.*, retry.*, upstream.*, limits.*, accessLog.level, tls.*. \
            SIGHUP reloads the log level; SIGTERM stops accepting, finishes requests in flight and exits.
            """,
        version: GatewayVersion.current)

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await EdgeBalancer.run(options: options)
    }
}

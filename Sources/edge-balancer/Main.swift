import ArgumentParser
import GatewayCore

@main
struct EdgeBalancerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-balancer",
        abstract: "The region edge: HTTP/1.1 and HTTP/2 front that balances API calls over the engine nodes it discovers in Redis.",
        discussion: """
            Configuration comes from a YAML file (--config), environment variables prefixed GC_BALANCER_ \
            (admin.port is GC_BALANCER_ADMIN_PORT), and --set key=value flags, each overriding the one before. \
            SIGHUP reloads what can be reloaded; SIGTERM drains and exits.
            """,
        version: GatewayVersion.current)

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await BasicService.run(name: "edge-balancer", environmentPrefix: ["gc", "balancer"], defaultAdminPort: 9103, options: options)
    }
}

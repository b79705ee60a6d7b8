import ArgumentParser
import GatewayCore

@main
struct GatewayCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatewayctl",
        abstract: "The operator's CLI for a gateway-cluster: nodes, weights, drain, APIs, keys and cache purges over the admin APIs.",
        version: GatewayVersion.current,
        subcommands: [Health.self])
}

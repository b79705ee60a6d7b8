import ArgumentParser
import GatewayCore

@main
struct GatewayCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatewayctl",
        abstract: "The operator's CLI for a gateway-cluster: nodes, weights, drain, policy, APIs, keys and cache purges over the admin APIs.",
        discussion: """
            Endpoints and the admin token come from flags, then environment variables (GATEWAYCTL_BALANCER, \
            GATEWAYCTL_ENGINE, GATEWAYCTL_REDIS, GATEWAYCTL_TOKEN, GATEWAYCTL_TOKEN_FILE), then the config file \
            (--config, GATEWAYCTL_CONFIG, or ~/.config/gatewayctl/config: key=value lines with keys balancer, \
            engine, redis, token, token_file). Tables by default; --json for scripts. Every error prints one line \
            and exits non-zero.
            """,
        version: GatewayVersion.current,
        subcommands: [
            Nodes.self, Weight.self, Drain.self, Undrain.self, Policy.self, APIs.self, Keys.self, Cache.self, Status.self,
            Health.self,
        ])
}

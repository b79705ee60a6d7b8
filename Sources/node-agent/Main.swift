import ArgumentParser
import GatewayCore
import NodeAgent

@main
struct NodeAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-agent",
        abstract:
            "The sidecar on every engine host: registers the node in Redis under a heartbeat lease, reports its health and load, and relays cluster-wide cache invalidations to the local engine.",
        discussion: """
            Configuration comes from a YAML file (--config), environment variables prefixed GC_AGENT_ \
            (admin.port is GC_AGENT_ADMIN_PORT), and --set key=value flags, each overriding the one before. \
            SIGHUP re-reads it and publishes a new weight, zone or labels; SIGTERM marks the node draining, \
            waits for the engine's in-flight requests, deregisters and exits 0.
            """,
        version: GatewayVersion.current)

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await NodeAgentMain.run(options: options)
    }
}

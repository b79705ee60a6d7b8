import ArgumentParser
import GatewayCore
import GatewayEngine

@main
struct GatewayEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-engine",
        abstract:
            "The API gateway node: routes API calls to backend services by API definition, with API-key and JWT auth, cluster-wide rate limits, a response cache and an admin API.",
        discussion: """
            Configuration comes from a YAML file (--config), environment variables prefixed GC_ENGINE_ \
            (admin.port is GC_ENGINE_ADMIN_PORT), and --set key=value flags, each overriding the one before. \
            SIGHUP reloads what can be reloaded; SIGTERM drains and exits.
            """,
        version: GatewayVersion.current)

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await GatewayEngineMain.run(options: options)
    }
}

import GatewayCore
import Logging

/// The `node-agent` binary: configuration, telemetry, the admin listener and the agent, until SIGTERM.
public enum NodeAgentMain {
    public static let name = "node-agent"
    public static let environmentPrefix = ["gc", "agent"]

    /// Loads the configuration (exiting on `--check-config` or when it is invalid), then runs the admin
    /// listener and the agent. SIGHUP reloads; SIGTERM drains, deregisters and returns.
    public static func run(options: ServiceOptions) async throws {
        let launcher = ServiceLauncher(name: name, environmentPrefix: environmentPrefix, options: options)
        let settings = try await launcher.loadConfiguration { v in AgentSettings.read(&v) }
        Telemetry.bootstrap(service: name, level: settings.common.logLevel, format: settings.common.logFormat)
        let logger = Logger(label: name)
        let redis = RedisClient(configuration: settings.common.redis, logger: logger)
        let agent = NodeAgent(settings: settings, redis: redis, logger: logger)
        var router = AdminRouter()
        agent.addRoutes(to: &router)
        let admin = AdminHTTPServer(settings: settings.common.admin, router: router, metricsPrefix: "node_agent", logger: logger)
        do {
            try await launcher.run(
                services: [admin, agent], shutdownDeadline: settings.common.shutdownDeadline, logger: logger,
                ready: { _ = try await admin.listeningAddress }
            ) {
                switch await launcher.validate({ v in AgentSettings.read(&v) }) {
                case .success(let new):
                    Telemetry.logLevel.level = new.common.logLevel
                    await agent.reload(new)
                    admin.reloadTokens(from: new.common.admin)
                case .failure(let error):
                    logger.error("configuration reload rejected; keeping the running configuration", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            await redis.shutdown()
            throw error
        }
        await redis.shutdown()
    }
}

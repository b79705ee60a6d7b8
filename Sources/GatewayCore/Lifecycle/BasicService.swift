import Logging

/// Runs a service binary that so far serves only its admin listener (health, readiness, metrics) with
/// the shared configuration, SIGHUP reload of the log level, and graceful SIGTERM.
///
/// Each service's own library replaces this with its full set of services as it grows.
public enum BasicService {
    public static func run(name: String, environmentPrefix: [String], defaultAdminPort: Int, options: ServiceOptions) async throws {
        let launcher = ServiceLauncher(name: name, environmentPrefix: environmentPrefix, options: options)
        let settings = try await launcher.loadConfiguration { v in
            CommonSettings.read(&v, serviceName: name, defaultAdminPort: defaultAdminPort)
        }
        Telemetry.bootstrap(service: name, level: settings.logLevel, format: settings.logFormat)
        let logger = Logger(label: name)
        var router = AdminRouter()
        StandardRoutes.add(to: &router, service: name)
        let admin = AdminHTTPServer(settings: settings.admin, router: router, logger: logger)
        try await launcher.run(services: [admin], shutdownDeadline: settings.shutdownDeadline, logger: logger) {
            switch await launcher.validate({ v in CommonSettings.read(&v, serviceName: name, defaultAdminPort: defaultAdminPort) }) {
            case .success(let new):
                Telemetry.logLevel.level = new.logLevel
                logger.info("configuration reloaded", metadata: ["log.level": "\(new.logLevel)"])
            case .failure(let error):
                logger.error("configuration reload rejected; keeping the running configuration", metadata: ["error": "\(error)"])
            }
        }
    }
}

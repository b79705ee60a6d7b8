import GatewayCore
import Logging

/// The `edge-balancer` service: loads its configuration, runs every part until SIGTERM (draining
/// connections), reloads the log level and the TLS certificate on SIGHUP.
public enum EdgeBalancer {
    public static func run(options: ServiceOptions) async throws {
        let name = BalancerSettings.serviceName
        let launcher = ServiceLauncher(name: name, environmentPrefix: ["gc", "balancer"], options: options)
        // The TLS files are read before `--check-config` says the configuration is valid.
        let (settings, tlsContext) = try await launcher.loadConfiguration({ v in BalancerSettings.read(&v) }) { settings in
            try settings.tls.map { try $0.makeContext() }
        }
        Telemetry.bootstrap(service: name, level: settings.common.logLevel, format: settings.common.logFormat)
        let logger = Logger(label: name)
        let app: BalancerApp
        do {
            app = try BalancerApp(settings: settings, tlsContext: tlsContext, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw error
        }
        logger.info(
            "edge balancer configured",
            metadata: [
                "listen.address": "\(settings.listenHost):\(settings.listenPort)", "region": "\(settings.controller.region)",
                "policy": "\(settings.controller.policy.rawValue)", "nodes.static": "\(settings.staticNodes.count)",
                "discovery.redis": "\(settings.useRedis)", "tls.address": "\(settings.tls.map { "\($0.host):\($0.port)" } ?? "off")",
            ])
        do {
            try await launcher.run(
                services: app.services, shutdownDeadline: settings.common.shutdownDeadline, logger: logger,
                ready: {
                    _ = try await app.admin.listeningAddress
                    _ = try await app.front.listeningAddress
                    if let tls = app.tlsFront { _ = try await tls.listeningAddress }
                }
            ) {
                switch await launcher.validate({ v in BalancerSettings.read(&v) }) {
                case .success(let new):
                    Telemetry.logLevel.level = new.common.logLevel
                    logger.info("configuration reloaded", metadata: ["log.level": "\(new.common.logLevel)"])
                    TLSContextBox.reloadLogging(app.tlsContext, running: settings.tls, settings: new.tls, logger: logger)
                    if let upstreamTLS = app.upstreamTLS, new.upstreamTLS {
                        upstreamTLS.reloadLogging(to: logger, name: "upstream", files: new.upstreamTLSFiles)
                    } else if (app.upstreamTLS != nil) != new.upstreamTLS {
                        logger.warning("upstream.tls changed in the configuration: it applies at the next restart")
                    }
                    app.admin.reloadTokens(from: new.common.admin)
                case .failure(let error):
                    logger.error("configuration reload rejected; keeping the running configuration", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            await app.shutdown()
            throw error
        }
        await app.shutdown()
    }
}

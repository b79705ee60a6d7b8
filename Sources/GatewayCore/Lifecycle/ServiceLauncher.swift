import ArgumentParser
import Configuration
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Loads a service's configuration from its sources and runs its services until SIGTERM.
public struct ServiceLauncher: Sendable {
    public var name: String
    public var environmentPrefix: [String]
    public var options: ServiceOptions

    /// - Parameters:
    ///   - name: the binary's name, for logs.
    ///   - environmentPrefix: words of the environment prefix, e.g. `["gc", "engine"]` for `GC_ENGINE_…`.
    public init(name: String, environmentPrefix: [String], options: ServiceOptions) {
        self.name = name
        self.environmentPrefix = environmentPrefix
        self.options = options
    }

    /// Reads and validates the configuration with `read`. Prints every problem to stderr and exits 1 when
    /// it is invalid; with `--check-config`, prints the verdict and exits.
    public func loadConfiguration<C: Sendable>(_ read: (inout ConfigValidator) -> C) async throws -> C {
        try await loadConfiguration(read, prepare: { _ in () }).0
    }

    /// ``loadConfiguration(_:)`` with what the configuration's files make (a seed file read, TLS contexts):
    /// `prepare` makes it from the valid configuration, and what it throws is a configuration error
    /// too — printed, exit 1 — found before `--check-config` gives its verdict, so a file that would stop
    /// the service from starting fails the check as well.
    public func loadConfiguration<C: Sendable, P>(
        _ read: (inout ConfigValidator) -> C, prepare: (C) throws -> P
    ) async throws -> (C, P) {
        switch await validate(read) {
        case .success(let config):
            let prepared: P
            do {
                prepared = try prepare(config)
            } catch {
                FileHandle.standardError.write(Data("\(name): invalid configuration:\n  - \(error)\n".utf8))
                throw ExitCode.failure
            }
            if options.checkConfig {
                print("configuration is valid")
                throw ExitCode.success
            }
            return (config, prepared)
        case .failure(let error):
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// Reads the configuration again (for SIGHUP), returning every problem instead of exiting.
    ///
    /// Keys a source sets that the service does not read are not errors (an older file keeps working)
    /// but are written to stderr as warnings, each with the nearest real key when there is one.
    public func validate<C: Sendable>(_ read: (inout ConfigValidator) -> C) async -> Result<C, ConfigValidationError> {
        do {
            let sources = ConfigSources(filePath: options.config, overrides: try options.overridePairs(), environmentPrefix: environmentPrefix)
            var validator = ConfigValidator(try await sources.makeReader())
            let config = read(&validator)
            try validator.finish()
            for unused in sources.unusedKeys(consulted: validator.consultedKeys) {
                FileHandle.standardError.write(Data("\(name): warning: \(unused)\n".utf8))
            }
            return .success(config)
        } catch {
            return .failure(error)
        }
    }

    /// Runs the services (in start order) until SIGTERM or SIGINT; on SIGHUP calls `reload`.
    ///
    /// Services shut down in reverse order, so list the admin listener first to keep it answering while
    /// the others drain. The whole shutdown is bounded by `shutdownDeadline`.
    ///
    /// Under systemd (`Type=notify`) it reports `READY=1` once `ready` returns (default: at once),
    /// `STOPPING=1` when draining begins, and watchdog pings when `WatchdogSec` is set.
    public func run(
        services: [any Service], shutdownDeadline: Duration, logger: Logger,
        ready: @escaping @Sendable () async throws -> Void = {},
        reload: (@Sendable () async -> Void)? = nil
    ) async throws {
        var all: [ServiceGroupConfiguration.ServiceConfiguration] = services.map {
            .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup)
        }
        all.append(.init(service: SystemdNotifyService(logger: logger, ready: ready), successTerminationBehavior: .gracefullyShutdownGroup))
        if let reload {
            all.append(.init(service: ReloadSignalService(reload: reload, logger: logger)))
        }
        var configuration = ServiceGroupConfiguration(services: all, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = shutdownDeadline
        configuration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: configuration)
        logger.info("starting", metadata: ["version": "\(GatewayVersion.current)"])
        do {
            try await group.run()
        } catch is CancellationError {
            // A service ended its work by cancellation while the group shut down: that is a clean stop.
        }
        logger.info("stopped")
    }
}

/// Calls `reload` on every SIGHUP, one at a time, after making new Redis connections reread their TLS
/// files.
public struct ReloadSignalService: Service {
    let reload: @Sendable () async -> Void
    let logger: Logger

    public init(reload: @escaping @Sendable () async -> Void, logger: Logger) {
        self.reload = reload
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading configuration")
            // New Redis connections read the TLS files again (a rotated certificate); open ones keep theirs.
            RedisTLS.forgetContexts()
            await reload()
        }
    }
}

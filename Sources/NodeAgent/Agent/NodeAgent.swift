import Foundation
import GatewayCore
import Logging
import ServiceLifecycle

/// The node-agent: registers its node in Redis under a heartbeat lease, probes the engine and reports
/// its health and load, applies cluster-wide cache invalidations to it, and drains on graceful shutdown.
///
/// Run it as a `Service` in a `ServiceGroup` (after the admin listener, so that one keeps answering while
/// the agent drains):
///
/// ```swift
/// let agent = NodeAgent(settings: settings, redis: redis, logger: logger)
/// let group = ServiceGroup(services: [admin, agent], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// Inside, three loops run as child tasks: the prober (every heartbeat interval), the record writer (the
/// only task that writes the node record, woken by every change, retrying with backoff while Redis is
/// down), and the invalidation consumer. On graceful shutdown it marks the node `draining`, waits for the
/// engine's in-flight requests to reach zero (or the drain deadline), stops the loops, then deletes the
/// record and announces `node_down`.
public final class NodeAgent: Service, Sendable {
    let settings: AgentSettings
    let redis: RedisClient
    let logger: Logger
    let core: AgentCore
    let status: AgentStatusStore
    private let registry: NodeRegistry

    /// - Parameters:
    ///   - settings: the configuration; parts of it change later with ``reload(_:)``.
    ///   - redis: the client for the cluster's Redis (the agent does not shut it down).
    public init(settings: AgentSettings, redis: RedisClient, logger: Logger) {
        self.settings = settings
        self.redis = redis
        var logger = logger
        logger[metadataKey: "node.id"] = "\(settings.node.id)"
        self.logger = logger
        self.core = AgentCore(identity: settings.node, engine: settings.engine)
        self.status = AgentStatusStore(identity: settings.node)
        self.registry = NodeRegistry(redis: redis, keys: settings.keys)
    }

    /// The agent's view of itself now.
    public var currentStatus: AgentStatus { status.current }

    public func run() async throws {
        let consumer = InvalidationConsumer(
            redis: redis, stream: settings.keys.invalidations,
            stateFile: InvalidationStateFile(path: settings.stateFile, node: settings.node.id), core: core, status: status,
            block: settings.invalidationBlock, backoff: retryBackoff, logger: logger)
        let resumeAt = await consumer.loadCursor()
        if let resumeAt {
            await core.resumeInvalidations(at: resumeAt)
            status.update { $0.lastInvalidation = resumeAt }
        }
        let (doorbell, ringer) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await core.attach(ringer)
        logger.info(
            "node-agent starting",
            metadata: [
                "node.region": "\(settings.node.region)", "node.zone": "\(settings.node.zone)",
                "node.address": "\(settings.node.address):\(settings.node.port)", "engine.url": "\(settings.engine.adminURL)",
                "redis.url": "\(settings.common.redis.url)", "heartbeat.interval": "\(settings.heartbeatInterval)",
            ])

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.writeRecords(doorbell) }
            group.addTask { await self.probeEngine() }
            group.addTask { await consumer.run(startingAfter: resumeAt) }
            do {
                try await gracefulShutdown()
            } catch {
                // Cancelled without a graceful shutdown: stop now and let the lease expire.
                group.cancelAll()
                return
            }
            let clock = ContinuousClock()
            let started = clock.now
            await self.announceDraining(until: started + settings.drainDeadline)
            await self.waitForEngineIdle(graceUntil: started + settings.drainGrace, deadline: started + settings.drainDeadline)
            group.cancelAll()
            await group.waitForAll()
            await self.deregister()
        }
        ringer.finish()
    }

    /// Applies a reloaded configuration: weight, region, zone, labels and address are published in the
    /// record (announced with `node_changed`, without registering again); the engine's URL, token and
    /// timeouts are used from the next call. Other keys need a restart and are reported.
    public func reload(_ new: AgentSettings) async {
        var restartOnly: [String] = []
        if new.node.id != settings.node.id { restartOnly.append("node.id") }
        if new.common.redis.url != settings.common.redis.url { restartOnly.append("redis.url") }
        if new.common.keyPrefix != settings.common.keyPrefix { restartOnly.append("redis.keyPrefix") }
        if new.heartbeatInterval != settings.heartbeatInterval { restartOnly.append("heartbeat.interval") }
        if new.lease != settings.lease { restartOnly.append("heartbeat.lease") }
        if new.stateFile != settings.stateFile { restartOnly.append("state.file") }
        if !restartOnly.isEmpty {
            logger.warning("reloaded keys that only take effect after a restart", metadata: ["config.keys": "\(restartOnly)"])
        }
        let changed = await core.reconfigure(identity: new.node, engine: new.engine)
        let identity = await core.identity
        status.update {
            $0.region = identity.region
            $0.zone = identity.zone
        }
        if changed {
            logger.notice(
                "configuration reloaded; publishing the new advertisement",
                metadata: [
                    "node.weight": "\(identity.weight)", "node.zone": "\(identity.zone)", "node.region": "\(identity.region)",
                    "node.labels": "\(identity.labelsText)",
                ])
        } else {
            logger.info("configuration reloaded; the advertisement is unchanged")
        }
    }

    var retryBackoff: Backoff {
        Backoff(initial: min(.milliseconds(50), settings.heartbeatInterval), maximum: settings.heartbeatInterval)
    }

    // MARK: Loops

    /// The only writer of the node record: writes it whenever the doorbell rings (every probe, every
    /// change), renewing the lease each time; while Redis fails, retries with backoff.
    private func writeRecords(_ doorbell: AsyncStream<Void>) async {
        let backoff = retryBackoff
        var failures = 0
        for await _ in doorbell {
            while !Task.isCancelled {
                let (record, generation) = await core.snapshot()
                do {
                    let existed = try await registry.heartbeat(record, lease: settings.lease)
                    let event = await core.written(existed: existed, generation: generation)
                    if failures > 0 {
                        logger.notice("redis reachable again", metadata: ["redis.failures": "\(failures)"])
                    }
                    failures = 0
                    status.heartbeatSucceeded(state: record.state)
                    if let event {
                        if case .nodeUp = event {
                            logger.notice(
                                "node registered",
                                metadata: [
                                    "node.state": "\(record.state)", "node.health": "\(record.health)",
                                    "record.created": "\(!existed)",
                                ])
                        }
                        do {
                            try await registry.publish(event)
                        } catch {
                            // Pub/sub is lossy by design: readers resync from the records.
                            logger.debug("could not publish event", metadata: ["event": "\(event.json)", "error": "\(error)"])
                        }
                    }
                    break
                } catch {
                    failures += 1
                    status.heartbeatFailed(error)
                    if failures == 1 {
                        logger.warning("heartbeat failed; retrying with backoff until redis answers", metadata: ["error": "\(error)"])
                    }
                    try? await Task.sleep(for: backoff.delay(afterFailures: failures))
                }
            }
        }
    }

    /// Probes the engine every heartbeat interval and rings the writer with the result.
    private func probeEngine() async {
        let clock = ContinuousClock()
        let interval = settings.heartbeatInterval
        var tracker = LoadTracker()
        var next = clock.now
        while !Task.isCancelled {
            let engine = EngineClient(settings: await core.engine)
            async let readiness = engine.ready()
            async let report = engine.health()
            let (ready, health) = await (readiness, report)
            let result = ProbeResult.assess(readiness: ready, report: health, load: tracker.load(from: health, at: clock.now))
            let (previous, state) = await core.probed(result)
            status.probed(result, state: state)
            if previous != result.health {
                let level: Logger.Level = result.health == .up ? .notice : .warning
                logger.log(
                    level: level, "engine health changed",
                    metadata: ["engine.health": "\(result.health)", "engine.previous": "\(previous)", "engine.reason": "\(result.reason)"])
            }
            status.refreshGauges(redis: redis)
            next = max(next + interval, clock.now)
            try? await Task.sleep(until: next, clock: clock)
        }
    }

    // MARK: Drain

    /// Marks the node draining and waits (within `deadline`) until Redis has it.
    private func announceDraining(until deadline: ContinuousClock.Instant) async {
        logger.notice("graceful shutdown: draining", metadata: ["drain.deadline": "\(settings.drainDeadline)"])
        let generation = await core.beginDrain()
        status.update { $0.state = .draining }
        while !Task.isCancelled {
            if await core.isWritten(generation: generation) {
                logger.info("node marked draining")
                return
            }
            if ContinuousClock.now >= deadline {
                logger.warning("could not record the draining state in redis before the drain deadline")
                return
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits until the engine has no request in flight (and the grace time has passed), or the deadline.
    ///
    /// An engine that does not report `in_flight` has nothing to wait for; one that leaves
    /// ``unansweredProbesEndingDrain`` probes in a row unanswered is taken to be gone (a single slow
    /// answer from a busy engine must not end the drain with its requests still in flight).
    private func waitForEngineIdle(graceUntil grace: ContinuousClock.Instant, deadline: ContinuousClock.Instant) async {
        let clock = ContinuousClock()
        let pause = min(.milliseconds(100), settings.heartbeatInterval)
        var lastInFlight = 0
        var unanswered = 0
        while !Task.isCancelled {
            let engine = EngineClient(settings: await core.engine)
            if let report = await engine.health() {
                unanswered = 0
                lastInFlight = report.inFlight ?? 0
            } else {
                unanswered += 1
                if unanswered == Self.unansweredProbesEndingDrain {
                    logger.info("engine not answering; nothing left to wait for", metadata: ["probes.unanswered": "\(unanswered)"])
                }
                if unanswered >= Self.unansweredProbesEndingDrain { lastInFlight = 0 }
            }
            let idle = lastInFlight <= 0 && (unanswered == 0 || unanswered >= Self.unansweredProbesEndingDrain)
            if idle && clock.now >= grace {
                logger.info("engine has no requests in flight")
                return
            }
            if clock.now >= deadline {
                logger.warning("drain deadline passed with requests still in flight", metadata: ["engine.in_flight": "\(lastInFlight)"])
                return
            }
            try? await Task.sleep(for: min(pause, max(deadline - clock.now, .milliseconds(1))))
        }
    }

    /// Unanswered engine probes in a row that end a drain's wait for in-flight requests.
    static let unansweredProbesEndingDrain = 3

    /// Deletes the record and announces `node_down`, retrying while the lease would still keep the record
    /// alive (past that it has expired on its own).
    private func deregister() async {
        let clock = ContinuousClock()
        let giveUp = clock.now + settings.lease
        let id = settings.node.id
        var failures = 0
        while true {
            do {
                try await registry.deregister(id)
                status.update {
                    $0.state = .down
                    $0.redisReachable = true
                }
                do {
                    try await registry.publish(.nodeDown(node: id))
                } catch {
                    logger.debug("could not publish node_down", metadata: ["error": "\(error)"])
                }
                logger.notice("node deregistered")
                return
            } catch {
                failures += 1
                if Task.isCancelled || clock.now >= giveUp {
                    logger.warning("could not deregister; the record expires with its lease", metadata: ["error": "\(error)"])
                    return
                }
                try? await Task.sleep(for: retryBackoff.delay(afterFailures: failures))
            }
        }
    }
}

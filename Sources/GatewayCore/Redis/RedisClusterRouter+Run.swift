import NIOCore
import Synchronization

extension RedisClusterRouter {
    /// Runs `body` on a connection to the node serving `slot` (the first seed for nil), following the
    /// redirections it throws:
    ///
    /// - `MOVED`: the slot is noted as the named node's, the layout is asked again, and the body runs
    ///   there; from the second redirection of one command on, after a wait (10, 20, 40... ms): nodes
    ///   that send each other's clients back and forth have not yet agreed who serves the slot (a
    ///   resharding's last step reaches them one by one), and agree within moments;
    /// - `ASK`: the body runs once on the named node, on a leased connection after `ASKING` (which lets
    ///   the next command — or, inside `MULTI`, the whole transaction — reach a slot being imported);
    /// - `TRYAGAIN`, `CLUSTERDOWN`: it waits a little (10, 20, 40... ms) and runs the body again.
    ///
    /// A redirection means the node did not run the command, so running the body again does nothing
    /// twice. An unreachable node asks for the layout again (a replica may be taking over) and the error
    /// is the caller's. After ``maxAttempts`` the last error is the caller's.
    ///
    /// A command without a key (`PING`, `PUBLISH`) may run on any node: it goes to the first seed, and
    /// when that cannot be reached, to the next node known, so one node down does not make Redis look
    /// down (an engine's readiness) or stop the events channel.
    func run<T: Sendable>(
        slot: Int?, shared: Bool, _ body: (RedisConnection) async throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        guard let slot else {
            var lastError: RedisError = .shutdown
            for pool in keylessCandidates {
                do {
                    return try await pool.withConnection(shared: shared, body)
                } catch {
                    guard error.isConnectivity else { throw error }
                    requestRefresh()
                    lastError = error
                }
            }
            throw lastError
        }
        var target = pool(forSlot: slot)
        var asking = false
        var attempt = 0
        while true {
            do {
                if asking {
                    return try await target.withConnection { connection throws(RedisError) in
                        try await connection.send(RedisCommand("ASKING"))
                        return try await body(connection)
                    }
                }
                return try await target.withConnection(shared: shared, body)
            } catch {
                attempt += 1
                let node = target.configuration.url.nodeAddress
                guard let redirect = RedisClusterRedirect(error, from: node) else {
                    if error.isConnectivity { requestRefresh() }
                    throw error
                }
                guard attempt < Self.maxAttempts else { throw error }
                switch redirect {
                case .moved(let movedSlot, let address):
                    moved(slot: movedSlot, to: address)
                    if attempt >= 2 { try? await Task.sleep(for: .milliseconds(5 << attempt)) }
                    target = pool(at: address)
                    asking = false
                case .ask(_, let address):
                    askCount.add(1, ordering: .relaxed)
                    target = pool(at: address)
                    asking = true
                case .retryLater:
                    retryCount.add(1, ordering: .relaxed)
                    try? await Task.sleep(for: .milliseconds(5 << attempt))
                    target = pool(forSlot: slot)
                    asking = false
                }
            }
        }
    }

    /// A `MULTI` … `EXEC` pipeline on the node of `slot`. A node that does not serve a queued command's
    /// slot answers it with a redirection and aborts the transaction (`EXECABORT`): nothing ran, so the
    /// whole transaction follows the redirection.
    func runTransaction(_ commands: [RedisCommand], slot: Int?, shared: Bool, timeout: Duration?) async throws(RedisError) -> [RedisValue] {
        try await run(slot: slot, shared: shared) { connection throws(RedisError) in
            let replies = try await connection.pipeline(commands, timeout: timeout)
            for case .error(let message) in replies.dropLast() {
                if RedisClusterRedirect(message: message, from: connection.configuration.url.nodeAddress) != nil {
                    throw RedisError.server(command: "MULTI", message: message)
                }
            }
            return replies
        }
    }

    /// Commands without a transaction: grouped by the node serving each one's slot, each group sent in
    /// one write, the replies put back in the commands' order. A command answered with a redirection is
    /// sent again on its own through ``run(slot:shared:_:)``; an error reply stays in its place.
    func pipeline(_ commands: [RedisCommand], shared: Bool, timeout: Duration?) async throws(RedisError) -> [RedisValue] {
        var groups: [(pool: RedisConnectionPool, indices: [Int])] = []
        for (index, command) in commands.enumerated() {
            let pool = pool(forSlot: command.clusterSlot)
            if let g = groups.firstIndex(where: { $0.pool === pool }) {
                groups[g].indices.append(index)
            } else {
                groups.append((pool, [index]))
            }
        }
        var replies = [RedisValue](repeating: .null, count: commands.count)
        for group in groups {
            let part = group.indices.map { commands[$0] }
            let got: [RedisValue]
            do {
                got = try await group.pool.withConnection(shared: shared) { connection throws(RedisError) in
                    try await connection.pipeline(part, timeout: timeout)
                }
            } catch {
                if error.isConnectivity { requestRefresh() }
                throw error
            }
            for (index, reply) in zip(group.indices, got) { replies[index] = reply }
        }
        let node = seedPool.configuration.url.nodeAddress
        for index in replies.indices {
            guard case .error(let message) = replies[index], RedisClusterRedirect(message: message, from: node) != nil else { continue }
            let command = commands[index]
            do {
                replies[index] = try await run(slot: command.clusterSlot, shared: shared) { connection throws(RedisError) in
                    try await connection.send(command, timeout: timeout)
                }
            } catch {
                guard case .server(_, let text) = error else { throw error }
                replies[index] = .error(text)
            }
        }
        return replies
    }
}

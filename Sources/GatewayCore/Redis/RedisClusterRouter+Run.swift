import NIOCore
import Synchronization

extension RedisClusterRouter {
    /// Runs `body` on a connection to the node serving `slot` (the first seed for nil), following the
    /// redirections it throws:
    ///
    /// - `MOVED`: the slot is noted as the named node's, the layout is asked again, and the body runs
    ///   there;
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
    /// one write, the groups sent to their nodes at the same time, and the replies put back in the
    /// commands' order. A command answered with a redirection is sent again on its own through
    /// ``run(slot:shared:_:)``; an error reply stays in its place. A node that cannot be reached fails
    /// the whole pipeline (with the first such error) once every group has its answer.
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
        let answers: [(Int, Result<[RedisValue], RedisError>)]
        if groups.count == 1 {
            answers = [(0, await Self.send(commands, to: groups[0].pool, shared: shared, timeout: timeout))]
        } else {
            answers = await withTaskGroup(of: (Int, Result<[RedisValue], RedisError>).self) { tasks in
                for (g, group) in groups.enumerated() {
                    let part = group.indices.map { commands[$0] }
                    let pool = group.pool
                    tasks.addTask { (g, await Self.send(part, to: pool, shared: shared, timeout: timeout)) }
                }
                var answers: [(Int, Result<[RedisValue], RedisError>)] = []
                for await answer in tasks { answers.append(answer) }
                return answers.sorted { $0.0 < $1.0 }
            }
        }
        for (g, answer) in answers {
            switch answer {
            case .success(let got):
                for (index, reply) in zip(groups[g].indices, got) { replies[index] = reply }
            case .failure(let error):
                if error.isConnectivity { requestRefresh() }
                throw error
            }
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

    private static func send(
        _ commands: [RedisCommand], to pool: RedisConnectionPool, shared: Bool, timeout: Duration?
    ) async -> Result<[RedisValue], RedisError> {
        do {
            return .success(
                try await pool.withConnection(shared: shared) { connection throws(RedisError) in
                    try await connection.pipeline(commands, timeout: timeout)
                })
        } catch {
            return .failure(error)
        }
    }
}

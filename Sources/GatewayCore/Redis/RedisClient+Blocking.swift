import NIOCore

extension RedisClient {
    /// Sends a blocking command (`XREAD BLOCK`, `BLPOP`, ...) on a connection of its own lease, waiting up
    /// to `timeout` for the reply.
    ///
    /// A blocked command holds its connection until Redis answers, and Redis cannot be told to stop
    /// waiting; so if the calling task is cancelled while it waits, the connection is closed and the call
    /// returns at once with ``RedisError/connectionClosed(address:)`` (the pool opens another connection
    /// when one is next needed). That lets a service stop without waiting out the block.
    ///
    /// On a cluster it goes to the node of the command's key, and follows a `MOVED` there once.
    @discardableResult
    public func sendBlocking(_ command: RedisCommand, timeout: Duration) async throws(RedisError) -> RedisValue {
        guard let cluster else { return try await sendBlocking(command, timeout: timeout, on: pool) }
        let target = cluster.pool(forSlot: command.clusterSlot)
        do {
            return try await sendBlocking(command, timeout: timeout, on: target)
        } catch {
            if error.isConnectivity { cluster.requestRefresh() }
            guard case .moved(let slot, let address)? = RedisClusterRedirect(error, from: target.configuration.url.nodeAddress) else {
                throw error
            }
            cluster.moved(slot: slot, to: address)
            return try await sendBlocking(command, timeout: timeout, on: cluster.pool(at: address))
        }
    }

    private func sendBlocking(_ command: RedisCommand, timeout: Duration, on pool: RedisConnectionPool) async throws(RedisError) -> RedisValue {
        let connection = try await pool.lease()
        defer { pool.release(connection) }
        let channel = connection.channel
        let result: Result<RedisValue, RedisError> = await withTaskCancellationHandler {
            do {
                return .success(try await connection.send(command, timeout: timeout))
            } catch let error as RedisError {
                return .failure(error)
            } catch {
                return .failure(.connectionClosed(address: connection.configuration.url.address))
            }
        } onCancel: {
            channel.close(promise: nil)
        }
        return try result.get()
    }
}

import NIOCore

extension RedisClient {
    /// Sends a blocking command (`XREAD BLOCK`, `BLPOP`, ...) on a connection of its own lease, waiting up
    /// to `timeout` for the reply.
    ///
    /// A blocked command holds its connection until Redis answers, and Redis cannot be told to stop
    /// waiting; so if the calling task is cancelled while it waits, the connection is closed and the call
    /// returns at once with ``RedisError/connectionClosed(address:)`` (the pool opens another connection
    /// when one is next needed). That lets a service stop without waiting out the block.
    @discardableResult
    public func sendBlocking(_ command: RedisCommand, timeout: Duration) async throws(RedisError) -> RedisValue {
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

import NIOCore

/// One RESP2 reply from Redis.
///
/// RESP2 has no distinct null array, so both the nil bulk string and the nil multi-bulk reply
/// arrive as ``null``.
public enum RedisValue: Sendable, Hashable {
    /// A simple string such as `OK` or `PONG`.
    case status(String)
    /// A bulk string: binary safe.
    case bulk(ByteBuffer)
    case integer(Int64)
    case null
    /// An error reply, with Redis's text (for example `NOSCRIPT No matching script`).
    case error(String)
    case array([RedisValue])
}

extension RedisValue {
    /// The value as text, for status and bulk replies.
    public var string: String? {
        switch self {
        case .status(let s): return s
        case .bulk(let b): return String(buffer: b)
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    /// The value as an integer, for integer replies and bulk strings holding a number.
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulk(let b): return Int64(String(buffer: b))
        case .status(let s): return Int64(s)
        default: return nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Throws the server's error if this is an error reply, else returns the value itself.
    @discardableResult
    public func throwingServerError(command: String) throws(RedisError) -> RedisValue {
        if case .error(let message) = self { throw .server(command: command, message: message) }
        return self
    }
}

extension RedisValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .status(let s): return "+\(s)"
        case .bulk(let b): return "\"\(String(buffer: b))\""
        case .integer(let i): return ":\(i)"
        case .null: return "(nil)"
        case .error(let e): return "-\(e)"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

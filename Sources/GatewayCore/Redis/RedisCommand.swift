import NIOCore

/// One argument of a Redis command. Text is sent as UTF-8; buffers are sent as they are.
public enum RedisArgument: Sendable, Hashable {
    case string(String)
    case bytes(ByteBuffer)
    case int(Int)
    case double(Double)
}

extension RedisArgument: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
}

/// A command, encoded once into RESP (`*N\r\n$len\r\narg\r\n...`) when it is made.
///
/// Encoding up front keeps the event loop's work to a single buffer write, and lets a pipeline be one
/// write of many commands.
public struct RedisCommand: Sendable {
    /// The command's name (its first argument), for errors and metrics.
    public let name: String
    /// The RESP encoding of the whole command.
    public internal(set) var encoded: ByteBuffer

    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments: arguments)
    }

    public init(_ name: String, arguments: [RedisArgument]) {
        self.name = name
        var buffer = ByteBufferAllocator().buffer(capacity: 16 + name.utf8.count + arguments.count * 24)
        buffer.writeStaticString("*")
        Self.writeDecimal(arguments.count + 1, into: &buffer)
        buffer.writeStaticString("\r\n")
        Self.writeBulk(name, into: &buffer)
        for argument in arguments {
            switch argument {
            case .string(let s): Self.writeBulk(s, into: &buffer)
            case .bytes(let b):
                buffer.writeStaticString("$")
                Self.writeDecimal(b.readableBytes, into: &buffer)
                buffer.writeStaticString("\r\n")
                buffer.writeImmutableBuffer(b)
                buffer.writeStaticString("\r\n")
            case .int(let i): Self.writeBulk(String(i), into: &buffer)
            case .double(let d): Self.writeBulk(String(d), into: &buffer)
            }
        }
        self.encoded = buffer
    }

    /// Whether the command can hold its connection waiting for something to happen (blocking pops,
    /// stream reads, which may carry `BLOCK`, `WAIT`) or changes what the connection's later replies mean
    /// (pub/sub, `MONITOR`, `WATCH`, `MULTI`, `SELECT`, `RESET`, `QUIT`, replication...): such a command
    /// needs a connection of its own, never a shared one.
    public var needsOwnConnection: Bool {
        if Self.ownConnection.contains(name) { return true }
        // Names are usually written in capitals; others are compared in capitals.
        guard name.utf8.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) else { return false }
        return Self.ownConnection.contains(name.uppercased())
    }

    private static let ownConnection: Set<String> = [
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "XREAD", "XREADGROUP",
        "WAIT", "WAITAOF", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
        "WATCH", "UNWATCH", "MULTI", "EXEC", "DISCARD", "SELECT", "RESET", "HELLO", "AUTH", "CLIENT", "READONLY", "READWRITE",
        "ASKING", "DEBUG", "SWAPDB", "QUIT", "SYNC", "PSYNC", "REPLCONF",
    ]

    @inline(__always)
    private static func writeBulk(_ s: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("$")
        writeDecimal(s.utf8.count, into: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeString(s)
        buffer.writeStaticString("\r\n")
    }

    @inline(__always)
    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(value))
        } else {
            buffer.writeString(String(value))
        }
    }
}

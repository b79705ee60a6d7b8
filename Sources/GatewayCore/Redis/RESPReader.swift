import CHiredis
import NIOCore

/// Parses RESP replies with hiredis's reader: bytes go in with ``feed(_:)``, whole replies come out of
/// ``next()``.
///
/// Limits guard the process against a broken or hostile server: a reply whose bytes pile up past
/// `maxReplyBytes` without completing, or an array announcing more than `maxArrayElements` elements,
/// is a protocol error (the caller closes the connection) rather than an allocation we cannot afford.
///
/// Owned by one channel handler and used on its event loop only.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let maxReplyBytes: Int
    private let allocator = ByteBufferAllocator()

    init(maxReplyBytes: Int) {
        let reader = redisReaderCreate()!
        // Same object functions as hiredis's defaults, but arrays are bounded before hiredis allocates them.
        reader.pointee.fn = UnsafeMutablePointer(mutating: guardedReplyFunctionsPointer)
        self.reader = reader
        self.maxReplyBytes = maxReplyBytes
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Bytes buffered inside hiredis that do not yet make a whole reply.
    var bufferedBytes: Int { reader.pointee.len - reader.pointee.pos }

    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw .protocolError(errorText()) }
        if bufferedBytes > maxReplyBytes {
            throw .protocolError("reply larger than the \(maxReplyBytes)-byte limit")
        }
    }

    /// The next whole reply, or nil when more bytes are needed.
    func next() throws(RedisError) -> RedisValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw .protocolError(errorText())
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulk(allocator.buffer(bytes: UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                elements.append(convert(r.element[i]!))
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private func errorText() -> String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            let bytes = raw.prefix(while: { $0 != 0 })
            return bytes.isEmpty ? "malformed reply" : String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// Arrays announcing more elements than this are refused before hiredis allocates their element vector.
let respMaxArrayElements: Int32 = 1 << 20

/// hiredis's default reply functions, read once from a throwaway reader.
private let defaultReplyFunctions: redisReplyObjectFunctions = {
    let reader = redisReaderCreate()!
    defer { redisReaderFree(reader) }
    return reader.pointee.fn.pointee
}()

/// The default functions with `createArray` bounded; allocated once and never freed (process lifetime).
// nonisolated(unsafe): the pointee is initialized inside the lazy global initializer before the pointer
// is published and is never written again; hiredis only reads it.
nonisolated(unsafe) private let guardedReplyFunctionsPointer: UnsafePointer<redisReplyObjectFunctions> = {
    var functions = defaultReplyFunctions
    functions.createArray = { task, elements in
        // Returning NULL makes hiredis report an error, which closes the connection.
        guard elements >= 0, elements <= respMaxArrayElements else { return nil }
        return defaultReplyFunctions.createArray(task, elements)
    }
    let pointer = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    pointer.initialize(to: functions)
    return UnsafePointer(pointer)
}()

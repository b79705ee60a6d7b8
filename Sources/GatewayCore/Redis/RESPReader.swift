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
        let (values, error) = drain(limit: 1)
        if let error { throw error }
        return values.first
    }

    /// Every whole reply buffered so far, and the protocol error that stopped reading, if any (replies
    /// before the error are still returned, in order).
    ///
    /// The bulk strings of all these replies are copied into one buffer and handed out as slices of it,
    /// so a burst of pipelined replies costs one allocation rather than one per reply.
    func drain(limit: Int = .max) -> (values: [RedisValue], error: RedisError?) {
        var raws: [UnsafeMutablePointer<redisReply>] = []
        var failure: RedisError?
        while raws.count < limit {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
                failure = .protocolError(errorText())
                break
            }
            guard let raw else { break }
            raws.append(raw.assumingMemoryBound(to: redisReply.self))
        }
        defer { for raw in raws { freeReplyObject(raw) } }
        guard !raws.isEmpty else { return ([], failure) }
        var total = 0
        for raw in raws { total += Self.bulkBytes(raw) }
        var arena = allocator.buffer(capacity: total)
        for raw in raws { Self.writeBulks(raw, into: &arena) }
        var offset = arena.readerIndex
        var values: [RedisValue] = []
        values.reserveCapacity(raws.count)
        for raw in raws { values.append(convert(raw, arena: arena, offset: &offset)) }
        return (values, failure)
    }

    private static func bulkBytes(_ reply: UnsafeMutablePointer<redisReply>) -> Int {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING: return r.len
        case REDIS_REPLY_ARRAY:
            var n = 0
            for i in 0..<r.elements { n += bulkBytes(r.element[i]!) }
            return n
        default: return 0
        }
    }

    private static func writeBulks(_ reply: UnsafeMutablePointer<redisReply>, into arena: inout ByteBuffer) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING: arena.writeBytes(UnsafeRawBufferPointer(start: r.str, count: r.len))
        case REDIS_REPLY_ARRAY: for i in 0..<r.elements { writeBulks(r.element[i]!, into: &arena) }
        default: break
        }
    }

    private func convert(_ reply: UnsafeMutablePointer<redisReply>, arena: ByteBuffer, offset: inout Int) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            defer { offset += r.len }
            return .bulk(arena.getSlice(at: offset, length: r.len)!)
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
                elements.append(convert(r.element[i]!, arena: arena, offset: &offset))
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

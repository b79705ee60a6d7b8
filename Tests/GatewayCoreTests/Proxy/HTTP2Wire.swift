/// HTTP/2 frames as bytes (RFC 9113 §4.1), for the tests that speak to the front frame by frame. Spelled
/// out here rather than taken from the codec under test.
enum HTTP2Wire {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    struct Frame: CustomStringConvertible {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
        /// The length the frame header declares (more than `payload` holds for a frame cut short).
        var length: Int
        var description: String { "(type \(type) flags \(flags) stream \(stream) \(payload.count) bytes)" }
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// A frame: 24-bit length, type, flags, 31-bit stream id, payload.
    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8] = []) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags] + be32(stream & 0x7fff_ffff) + payload
    }

    /// The frames in `bytes`; a last frame cut short keeps the payload bytes there are.
    static func frames(in bytes: [UInt8]) -> [Frame] {
        var frames: [Frame] = []
        var i = 0
        while i + 9 <= bytes.count {
            let length = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            let stream = UInt32(bytes[i + 5] & 0x7f) << 24 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 8 | UInt32(bytes[i + 8])
            let end = min(bytes.count, i + 9 + length)
            frames.append(Frame(type: bytes[i + 3], flags: bytes[i + 4], stream: stream, payload: Array(bytes[(i + 9)..<end]), length: length))
            i += 9 + length
        }
        return frames
    }
}

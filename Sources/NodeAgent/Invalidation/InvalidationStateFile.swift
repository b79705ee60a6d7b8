import Foundation
import GatewayCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The small local file where the agent keeps the id of the last invalidation it applied, so a restarted
/// agent resumes where it stopped.
///
/// It holds one line of JSON, `{"last_applied":"<id>","node":"<id>","updated_ms":<ms>}`, and is replaced
/// atomically: written to a temporary file beside it, flushed, then renamed over it. A crash leaves
/// either the old or the new file, never half of one. The blocking file calls run on NIO's thread pool,
/// off the cooperative threads and off every event loop.
struct InvalidationStateFile: Sendable {
    enum StateFileError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case malformed(path: String)
        case writeFailed(path: String, reason: String)

        var description: String {
            switch self {
            case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
            case .malformed(let path): return "\(path) does not hold a last applied invalidation id"
            case .writeFailed(let path, let reason): return "cannot write \(path): \(reason)"
            }
        }
    }

    let path: String
    let node: String

    /// The recorded id; nil when the file does not exist.
    func load() async throws -> RedisStreamID? {
        let path = self.path
        return try await NIOThreadPool.singleton.runIfActive {
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw StateFileError.unreadable(path: path, reason: "\(error)")
            }
            guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                let text = object["last_applied"] as? String, let id = RedisStreamID(text)
            else { throw StateFileError.malformed(path: path) }
            return id
        }
    }

    /// Records `id` atomically.
    func save(_ id: RedisStreamID) async throws {
        let path = self.path
        let line =
            #"{"last_applied":"\#(id)","node":\#(StructuredLogHandler.jsonString(node)),"updated_ms":\#(Int64(Date().timeIntervalSince1970 * 1000))}"#
            + "\n"
        try await NIOThreadPool.singleton.runIfActive {
            try Self.writeAtomically(Array(line.utf8), to: path)
        }
    }

    private static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError.writeFailed(path: temporary, reason: String(cString: strerror(errno))) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw StateFileError.writeFailed(path: temporary, reason: reason)
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(temporary)
            throw StateFileError.writeFailed(path: temporary, reason: reason)
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StateFileError.writeFailed(path: path, reason: reason)
        }
    }
}

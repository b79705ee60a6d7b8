import Foundation
import Logging
import NIOConcurrencyHelpers

/// The shape of log lines on stdout.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `ts=… level=info msg="…" key=value`, one line per event.
    case logfmt
    /// One JSON object per line.
    case json
}

/// Writes one structured line per log event to stdout (journald picks it up), with secrets redacted.
///
/// Metadata keys that name secrets (token, password, api key, authorization, …) are shown as `***`, and
/// credentials inside URLs are masked in every value and in the message.
public struct StructuredLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    /// The level; when the handler shares a ``LogLevelSetting``, setting it changes every logger at once
    /// (how SIGHUP applies a new `log.level`).
    public var logLevel: Logger.Level {
        get { levelSetting.level }
        set { levelSetting.level = newValue }
    }
    private let levelSetting: LogLevelSetting
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogFormat
    private let sink: LogSink

    public init(label: String, level: LogLevelSetting, format: LogFormat, sink: LogSink = .stdout) {
        self.label = label
        self.levelSetting = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line = Self.render(
            format: format, timestamp: Date(), level: event.level, label: label,
            message: event.message.description, metadata: merged)
        sink.write(line)
    }

    /// Renders one line (without I/O), for the handler and for tests.
    public static func render(
        format: LogFormat, timestamp: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> String {
        let ts = Self.timestamp(timestamp)
        let msg = Redactor.redactURLs(message)
        let keys = metadata.keys.sorted()
        switch format {
        case .logfmt:
            var line = "ts=\(ts) level=\(level.rawValue) logger=\(label) msg=\(logfmtValue(msg))"
            for key in keys {
                line += " \(key)=\(logfmtValue(Redactor.redact(key: key, value: "\(metadata[key]!)")))"
            }
            return line
        case .json:
            var line = "{\"ts\":\(jsonString(ts)),\"level\":\(jsonString(level.rawValue)),\"logger\":\(jsonString(label)),\"msg\":\(jsonString(msg))"
            for key in keys {
                line += ",\(jsonString(key)):\(jsonString(Redactor.redact(key: key, value: "\(metadata[key]!)")))"
            }
            return line + "}"
        }
    }

    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-25T01:11:41.836Z`, without Foundation's formatters
    /// (which are slow enough to matter on a per-request access log).
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let millis = Int((interval - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return
            "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }

    static func logfmtValue(_ s: String) -> String {
        let needsQuotes = s.isEmpty || s.utf8.contains { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "=") || Telemetry.needsEscaping($0) }
        guard needsQuotes else { return s }
        return "\"" + Telemetry.escapedForQuotes(s) + "\""
    }

    /// A JSON string literal for `s`.
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Where log lines go. Writes are whole lines under a lock, so lines from many threads never interleave.
public final class LogSink: Sendable {
    private let lock = NIOLock()
    private let fd: Int32

    init(fd: Int32) { self.fd = fd }

    public static let stdout = LogSink(fd: STDOUT_FILENO)
    public static let stderr = LogSink(fd: STDERR_FILENO)

    func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        lock.withLock {
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n <= 0 {
                        if n < 0 && errno == EINTR { continue }
                        return
                    }
                    offset += n
                }
            }
        }
    }
}

/// A log level shared by many handlers and changeable at run time.
public final class LogLevelSetting: Sendable {
    private let box: NIOLockedValueBox<Logger.Level>

    public init(_ level: Logger.Level) {
        box = NIOLockedValueBox(level)
    }

    public var level: Logger.Level {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}

import Foundation
import GatewayCore
import Logging
import Testing

@Suite struct StructuredLogTests {
    /// logfmt lines quote values with spaces and redact secrets by key and inside URLs.
    @Test func logfmtRedactsSecrets() {
        let line = StructuredLogHandler.render(
            format: .logfmt, timestamp: Date(timeIntervalSince1970: 0), level: .info, label: "engine",
            message: "connecting to redis://app:hunter2@10.0.0.1:6379/0",
            metadata: ["admin.token": "s3cr3t-token-value", "http.path": "/a b", "x-api-key": "gk_abc"])
        #expect(line.hasPrefix("ts=1970-01-01T00:00:00.000Z level=info logger=engine msg="))
        #expect(!line.contains("hunter2"))
        #expect(line.contains("redis://app:***@10.0.0.1:6379/0"))
        #expect(!line.contains("s3cr3t"))
        #expect(line.contains("admin.token=***"))
        #expect(line.contains("x-api-key=***"))
        #expect(line.contains("http.path=\"/a b\""))
    }

    /// A logfmt line stays one line whatever its values hold: CR LF (one `Character` in Swift), a lone
    /// CR or LF, quotes and backslashes are escaped, so a value cannot forge a line of its own.
    @Test func logfmtValuesCannotBreakTheLine() {
        let line = StructuredLogHandler.render(
            format: .logfmt, timestamp: Date(timeIntervalSince1970: 0), level: .info, label: "engine",
            message: "first\r\nts=1970 level=error msg=forged",
            metadata: ["error": "a\rb", "detail": "q\"\\\n"])
        #expect(!line.utf8.contains(UInt8(ascii: "\n")) && !line.utf8.contains(UInt8(ascii: "\r")), "\(line)")
        #expect(line.contains(#"msg="first\r\nts=1970 level=error msg=forged""#), "\(line)")
        #expect(line.contains(#"error="a\rb""#) && line.contains(#"detail="q\"\\\n""#), "\(line)")
    }

    /// JSON lines are valid JSON objects with the same redaction.
    @Test func jsonLinesAreValidJSON() throws {
        let line = StructuredLogHandler.render(
            format: .json, timestamp: Date(timeIntervalSince1970: 1.5), level: .warning, label: "agent",
            message: "quote \" and newline \n", metadata: ["password": "pw", "node": "n1"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["level"] == "warning")
        #expect(object["msg"] == "quote \" and newline \n")
        #expect(object["password"] == "***")
        #expect(object["node"] == "n1")
        #expect(object["ts"] == "1970-01-01T00:00:01.500Z")
    }

    /// Keys that name token files are not secrets (the path is useful in logs); keys that name tokens are.
    @Test func secretKeyDetection() {
        #expect(Redactor.isSecretKey("admin.token"))
        #expect(Redactor.isSecretKey("Authorization"))
        #expect(Redactor.isSecretKey("jwt.secret"))
        #expect(!Redactor.isSecretKey("admin.tokenFile"))
        #expect(!Redactor.isSecretKey("redis.url"))
    }
}

import Crypto
import GatewayCore

enum SHA256Hex {
    /// Lower-case hex SHA-256 of the text's UTF-8 bytes.
    static func of(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).hexString
    }
}

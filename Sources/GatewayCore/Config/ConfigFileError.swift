/// A file the configuration names that cannot be used (a seed file, a TLS certificate): its key and the
/// reason, as `--check-config` and start-up print it.
public struct ConfigFileError: Error, CustomStringConvertible {
    public var message: String

    public init(message: String) {
        self.message = message
    }

    public var description: String { message }
}

import Foundation

/// Whether `/usr/bin/python3` can import `module` (the system Python, where apt installs `python3-h2`
/// and `python3-websockets`): for tests that use a Python library as an independent peer.
public func systemPythonHas(module: String) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", "import \(module)"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}

import Foundation
import GatewayCore
import Testing

/// docs/configuration.md against the configuration readers: every key a reader reads is documented under
/// its service, every documented key is read, and every environment variable is spelled as
/// `ConfigSources` derives it.
struct ConfigurationDocTests {
    /// The section of docs/configuration.md, its environment prefix, and the reader source files.
    static let sections: [(title: String, prefix: String, sources: [String])] = [
        ("Keys every service has", "GC_<SERVICE>", ["Sources/GatewayCore/Config/CommonSettings.swift"]),
        (
            "gateway-engine", "GC_ENGINE",
            [
                "Sources/GatewayEngine/Server/EngineConfiguration.swift", "Sources/GatewayCore/Config/TLSListenerSettings.swift",
                "Sources/GatewayCore/Proxy/AddressRanges.swift",
            ]
        ),
        ("node-agent", "GC_AGENT", ["Sources/NodeAgent/Configuration/AgentSettings.swift"]),
        (
            "edge-balancer", "GC_BALANCER",
            [
                "Sources/EdgeBalancer/Config/BalancerSettings.swift", "Sources/GatewayCore/Config/TLSListenerSettings.swift",
                "Sources/GatewayCore/Proxy/AddressRanges.swift",
            ]
        ),
    ]

    /// Every key documented matches a key read, in the same service, and the other way round.
    @Test(arguments: sections.map(\.title))
    func documentedKeysAreTheKeysTheReaderReads(_ title: String) throws {
        let section = try #require(Self.sections.first { $0.title == title })
        let documented = try Self.documentedRows(section: title)
        var read = Set<String>()
        for source in section.sources {
            read.formUnion(Self.keysRead(try String(contentsOfFile: PackageRoot.path + "/" + source, encoding: .utf8)))
        }
        #expect(!read.isEmpty)
        let documentedKeys = Set(documented.map(\.key))
        #expect(read.subtracting(documentedKeys).isEmpty, "read but not documented in \"\(title)\": \(read.subtracting(documentedKeys).sorted())")
        #expect(documentedKeys.subtracting(read).isEmpty, "documented in \"\(title)\" but not read: \(documentedKeys.subtracting(read).sorted())")
        for row in documented {
            #expect(row.environment == Self.environmentName(prefix: section.prefix, key: row.key), "\(row.key)")
        }
    }

    /// `GC_<PREFIX>_` + the key's words in upper case, dots and camel-case humps as underscores.
    static func environmentName(prefix: String, key: String) -> String {
        var words: [String] = []
        for segment in key.split(separator: ".") {
            var word = ""
            var previous: Character?
            for c in segment {
                if c.isUppercase, let p = previous, p.isLowercase || p.isNumber { word += "_" }
                word.append(c)
                previous = c
            }
            words.append(word.uppercased())
        }
        return prefix + "_" + words.joined(separator: "_")
    }

    /// The `(key, environment variable)` rows of the table under `## <section>`.
    static func documentedRows(section: String) throws -> [(key: String, environment: String)] {
        let doc = try String(contentsOfFile: PackageRoot.path + "/docs/configuration.md", encoding: .utf8)
        var rows: [(String, String)] = []
        var inSection = false
        for line in doc.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") {
                inSection = line.dropFirst(3).trimmingWhitespace() == section
                continue
            }
            guard inSection, line.hasPrefix("| `") else { continue }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
            // | key | default | environment variable | meaning |
            guard cells.count >= 5 else { continue }
            rows.append((cells[1].trimmingCharacters(in: ["`"]), cells[3].trimmingCharacters(in: ["`"])))
        }
        return rows
    }

    /// Keys named in `ConfigValidator` calls (`v.int("admin.port", …)`) and direct reads of `nodes.static`.
    static func keysRead(_ source: String) -> Set<String> {
        let pattern =
            #/(?:v\.(?:string|optionalString|requiredString|stringList|int|double|bool|duration|byteSize|choice|redisURL|httpURL|raw)\(|stringArray\(forKey: )"([A-Za-z.]+)"/#
        var keys = Set(source.matches(of: pattern).map { String($0.output.1) })
        // `ClientTLSFiles.read(&v, prefix: "p")` reads p.caFile, p.certFile and p.keyFile.
        for match in source.matches(of: #/ClientTLSFiles\.read\(&v, prefix: "([A-Za-z.]+)"/#) {
            keys.formUnion(["caFile", "certFile", "keyFile"].map { "\(match.output.1).\($0)" })
        }
        return keys
    }
}

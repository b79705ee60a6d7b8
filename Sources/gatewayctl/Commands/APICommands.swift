import ArgumentParser
import Foundation
import NIOHTTP1

/// `gatewayctl apis list|get|apply|delete`.
struct APIs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apis", abstract: "Manage API definitions (stored in Redis, applied by every engine within a second).",
        subcommands: [List.self, Get.self, Targets.self, Apply.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API definitions.")
        @OptionGroup var options: CtlOptions

        func run() async throws {
            try await runReporting {
                let result = try await options.engineClient().call(.GET, "/apis")
                if options.json { return printJSON(result) }
                let apis = (result as? [String: Any])?["apis"] as? [[String: Any]] ?? []
                printTable(
                    ["ID", "NAME", "LISTEN", "HOSTS", "AUTH", "TARGETS", "ACTIVE"],
                    apis.map { a in
                        [
                            cell(a["id"]), cell(a["name"]), cell(a["listen_path"]), cell(a["hosts"]),
                            cell((a["auth"] as? [String: Any])?["mode"] ?? "keyless"),
                            cell((a["targets"] as? [[String: Any]])?.map { $0["url"] ?? "" }), cell(a["active"] ?? true),
                        ]
                    })
                print("version \(cell((result as? [String: Any])?["version"]))")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one API definition (secrets redacted).")
        @OptionGroup var options: CtlOptions
        @Argument(help: "API id.") var id: String

        func run() async throws {
            try await runReporting { printJSON(try await options.engineClient().call(.GET, "/apis/\(id)")) }
        }
    }

    struct Targets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an API's targets and their health on one engine (--engine; each engine checks its own).")
        @OptionGroup var options: CtlOptions
        @Argument(help: "API id.") var id: String

        func run() async throws {
            try await runReporting {
                let result = try await options.engineClient().call(.GET, "/apis/\(id)/targets")
                if options.json { return printJSON(result) }
                let targets = (result as? [String: Any])?["targets"] as? [[String: Any]] ?? []
                printTable(
                    ["TARGET", "WEIGHT", "IN ROTATION", "CHECKS", "PASSIVE"],
                    targets.map { t in
                        let healthy = (t["healthy"] as? Bool).map { $0 ? "healthy" : "unhealthy" } ?? "-"
                        let passive = (t["passive_down_ms"] as? Int).map { "out \($0) ms" } ?? "-"
                        return [cell(t["url"]), cell(t["weight"]), (t["in_rotation"] as? Bool) == true ? "yes" : "no", healthy, passive]
                    })
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or replace API definitions from a JSON file (one object or an array).")
        @OptionGroup var options: CtlOptions
        @Option(name: .shortAndLong, help: "JSON file with the definition(s); - for standard input.") var file: String

        func run() async throws {
            try await runReporting {
                let data: Data
                if file == "-" {
                    data = FileHandle.standardInput.readDataToEndOfFile()
                } else {
                    guard let d = FileManager.default.contents(atPath: file) else { throw CtlError("cannot read \(file)") }
                    data = d
                }
                let parsed: Any
                do { parsed = try JSONSerialization.jsonObject(with: data) } catch { throw CtlError("\(file) is not valid JSON") }
                let items: [[String: Any]]
                if let one = parsed as? [String: Any] {
                    items = [one]
                } else if let many = parsed as? [[String: Any]] {
                    items = many
                } else {
                    throw CtlError("\(file) must hold a JSON object or an array of objects")
                }
                let client = try options.engineClient()
                for item in items {
                    guard let id = item["id"] as? String, !id.isEmpty else { throw CtlError("a definition in \(file) has no id") }
                    let result = try await client.call(.PUT, "/apis/\(id)", body: item)
                    if options.json { printJSON(result) } else { print("applied \(id) (version \(cell((result as? [String: Any])?["version"])))") }
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an API definition.")
        @OptionGroup var options: CtlOptions
        @Argument(help: "API id.") var id: String

        func run() async throws {
            try await runReporting {
                let result = try await options.engineClient().call(.DELETE, "/apis/\(id)")
                if options.json { return printJSON(result) }
                print("deleted \(id)")
            }
        }
    }
}

/// `gatewayctl keys create|list|show|update|revoke`.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Manage API keys (stored only as hashes; a revoked or changed key is seen by every engine within a second).",
        subcommands: [Create.self, List.self, Show.self, Update.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; the key itself is printed once.")
        @OptionGroup var options: CtlOptions
        @Option(help: "A name for the key's owner.") var name: String
        @Option(help: "APIs it may call (comma-separated ids; default all).") var apis: String?
        @Option(help: "Requests per period.") var rate: Int?
        @Option(help: "Rate period in seconds.") var period: Int = 1
        @Option(help: "Burst size.") var burst: Int?
        @Option(help: "Expiry as an ISO 8601 time, e.g. 2027-01-01T00:00:00Z.") var expires: String?
        @Option(help: "Requests allowed per quota period.") var quota: Int?
        @Option(help: "Quota period in seconds.") var quotaPeriod: Int = 86_400
        @Option(
            help: ArgumentHelp(
                "Import the key clients already hold, read from this file (- for standard input) instead of making one.",
                discussion: "Keeps clients moving from another gateway on their keys; never pass a key on the command line."))
        var importFrom: String?

        func run() async throws {
            try await runReporting {
                var body: [String: Any] = ["name": name]
                if let importFrom {
                    let data: Data?
                    if importFrom == "-" {
                        data = FileHandle.standardInput.readDataToEndOfFile()
                    } else {
                        data = FileManager.default.contents(atPath: importFrom)
                    }
                    guard let data else { throw ValidationError("--import-from: cannot read \(importFrom)") }
                    let key = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    guard !key.isEmpty else { throw ValidationError("--import-from: \(importFrom) holds no key") }
                    body["key"] = key
                }
                if let apis { body["allowed_apis"] = apis.split(separator: ",").map(String.init) }
                if let rate { body["rate_limit"] = ["rate": rate, "period_seconds": period, "burst": burst ?? rate] }
                if let expires { body["expires_at"] = expires }
                if let quota { body["quota"] = ["limit": quota, "period_seconds": quotaPeriod] }
                let result = try await options.engineClient().call(.POST, "/keys", body: body)
                if options.json { return printJSON(result) }
                let object = result as? [String: Any] ?? [:]
                let record = object["record"] as? [String: Any] ?? [:]
                if object["imported"] as? Bool == true {
                    print("imported: id \(cell(record["id"]))")
                    return
                }
                print("key:    \(cell(object["key"]))")
                print("id:     \(cell(record["id"]))")
                print("Store the key now: it is not shown again.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (ids and policies, never the keys).")
        @OptionGroup var options: CtlOptions

        func run() async throws {
            try await runReporting {
                let result = try await options.engineClient().call(.GET, "/keys")
                if options.json { return printJSON(result) }
                let keys = (result as? [String: Any])?["keys"] as? [[String: Any]] ?? []
                printTable(
                    ["ID", "NAME", "APIS", "RATE", "EXPIRES"],
                    keys.map { k in
                        let rate = k["rate_limit"] as? [String: Any]
                        return [
                            cell(k["id"]), cell(k["name"]), cell((k["allowed_apis"] as? [Any])?.isEmpty == false ? k["allowed_apis"] : "all"),
                            rate.map { "\(cell($0["rate"]))/\(cell($0["period_seconds"]))s" } ?? "-", cell(k["expires_at"]),
                        ]
                    })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one key's record (never the key).")
        @OptionGroup var options: CtlOptions
        @Argument(help: "Key id (from `keys list`).") var id: String

        func run() async throws {
            try await runReporting {
                printJSON(try await options.engineClient().call(.GET, "/keys/\(id)"))
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a key's name, APIs, rate limit, quota or expiry, keeping the key itself.",
            discussion: "Only the options given change. Every engine applies the change within a second.")
        @OptionGroup var options: CtlOptions
        @Argument(help: "Key id (from `keys list`).") var id: String
        @Option(help: "A new name.") var name: String?
        @Option(help: "APIs it may call (comma-separated ids; \"all\" for every API).") var apis: String?
        @Option(help: "Requests per period.") var rate: Int?
        @Option(help: "Rate period in seconds.") var period: Int = 1
        @Option(help: "Burst size (default: the rate).") var burst: Int?
        @Flag(help: "Drop the key's own rate limit (the API's applies).") var noRateLimit = false
        @Option(help: "Requests allowed per quota period.") var quota: Int?
        @Option(help: "Quota period in seconds.") var quotaPeriod: Int = 86_400
        @Flag(help: "Drop the key's own quota (the API's applies).") var noQuota = false
        @Option(help: "New expiry as an ISO 8601 time.") var expires: String?
        @Flag(help: "The key never expires.") var noExpiry = false

        /// The change, as the admin API's `PATCH /keys/{id}` body: `null` clears a field.
        private var body: [String: Any] {
            var body: [String: Any] = [:]
            if let name { body["name"] = name }
            if let apis { body["allowed_apis"] = apis == "all" ? [String]() : apis.split(separator: ",").map(String.init) }
            if let rate { body["rate_limit"] = ["rate": rate, "period_seconds": period, "burst": burst ?? rate] }
            if noRateLimit { body["rate_limit"] = NSNull() }
            if let quota { body["quota"] = ["limit": quota, "period_seconds": quotaPeriod] }
            if noQuota { body["quota"] = NSNull() }
            if let expires { body["expires_at"] = expires }
            if noExpiry { body["expires_at"] = NSNull() }
            return body
        }

        func validate() throws {
            if rate != nil && noRateLimit { throw ValidationError("--rate and --no-rate-limit contradict each other") }
            if quota != nil && noQuota { throw ValidationError("--quota and --no-quota contradict each other") }
            if expires != nil && noExpiry { throw ValidationError("--expires and --no-expiry contradict each other") }
            if body.isEmpty { throw ValidationError("nothing to change: give --name, --apis, --rate, --quota, --expires or a --no-… flag") }
        }

        func run() async throws {
            try await runReporting {
                let result = try await options.engineClient().call(.PATCH, "/keys/\(id)", body: body)
                if options.json { return printJSON(result) }
                print("updated \(id)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by its id.")
        @OptionGroup var options: CtlOptions
        @Argument(help: "Key id (from `keys list`).") var id: String

        func run() async throws {
            try await runReporting {
                let result = try await options.engineClient().call(.DELETE, "/keys/\(id)")
                if options.json { return printJSON(result) }
                print("revoked \(id)")
            }
        }
    }
}

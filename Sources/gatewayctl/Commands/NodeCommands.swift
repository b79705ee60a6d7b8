import ArgumentParser
import Foundation
import NIOHTTP1

/// `gatewayctl nodes`: the balancer's view of every node.
struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the nodes a balancer routes to, with health, weights, latency and load.")
    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await runReporting {
            let report = try await options.balancerClient().call(.GET, "/nodes")
            if options.json { return printJSON(report) }
            let nodes = (report as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
            let rows = nodes.map { n -> [String] in
                let health = n["health"] as? [String: Any] ?? [:]
                let weight = n["weight"] as? [String: Any] ?? [:]
                let state = (n["drained"] as? Bool == true) ? "drained" : cell(health["agent_state"])
                return [
                    cell(n["id"]), cell(n["region"]), cell(n["zone"]), "\(cell(n["address"])):\(cell(n["port"]))", state,
                    "\(cell(health["active"]))/\(cell(health["passive"]))", cell(n["usable"]),
                    "\(cell(weight["advertised"]))/\(cell(weight["override"]))/\(cell(weight["effective"]))",
                    cell(n["ewma_ms"]), cell(n["in_flight"]), cell(n["ejections"]),
                ]
            }
            printTable(
                [
                    "NODE", "REGION", "ZONE", "ADDRESS", "STATE", "ACTIVE/PASSIVE", "USABLE", "WEIGHT adv/ovr/eff", "EWMA_MS", "IN_FLIGHT",
                    "EJECTIONS",
                ], rows)
        }
    }
}

/// `gatewayctl weight set|get|clear`.
struct Weight: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set, show or clear a node's operator weight (applied by every balancer within a second).",
        subcommands: [Set.self, Get.self, Clear.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a node's weight override.")
        @OptionGroup var options: CtlOptions
        @Argument(help: "Node id.") var node: String
        @Argument(help: "Weight, 0–10000 (0 sends no new requests).") var weight: Int

        func validate() throws {
            guard (0...10_000).contains(weight) else { throw ValidationError("weight must be between 0 and 10000, got \(weight)") }
        }

        func run() async throws {
            try await runReporting {
                let result = try await options.balancerClient().call(.PUT, "/nodes/\(node)/weight", body: ["weight": weight])
                if options.json { return printJSON(result) }
                print("weight of \(node) set to \(weight)")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a node's weights.")
        @OptionGroup var options: CtlOptions
        @Argument(help: "Node id.") var node: String

        func run() async throws {
            try await runReporting {
                let report = try await options.balancerClient().call(.GET, "/nodes/\(node)")
                if options.json { return printJSON(report) }
                let weight = (report as? [String: Any])?["weight"] as? [String: Any] ?? [:]
                printTable(
                    ["NODE", "CONFIGURED", "ADVERTISED", "OVERRIDE", "EFFECTIVE"],
                    [[node, cell(weight["configured"]), cell(weight["advertised"]), cell(weight["override"]), cell(weight["effective"])]])
            }
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a node's weight override (back to the advertised weight).")
        @OptionGroup var options: CtlOptions
        @Argument(help: "Node id.") var node: String

        func run() async throws {
            try await runReporting {
                let result = try await options.balancerClient().call(.DELETE, "/nodes/\(node)/weight")
                if options.json { return printJSON(result) }
                print("weight override of \(node) removed")
            }
        }
    }
}

/// `gatewayctl drain NODE`.
struct Drain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop sending new requests to a node (in-flight ones finish).")
    @OptionGroup var options: CtlOptions
    @Argument(help: "Node id.") var node: String

    func run() async throws {
        try await runReporting {
            let result = try await options.balancerClient().call(.POST, "/nodes/\(node)/drain")
            if options.json { return printJSON(result) }
            print("\(node) drained")
        }
    }
}

/// `gatewayctl undrain NODE`.
struct Undrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send requests to a drained node again.")
    @OptionGroup var options: CtlOptions
    @Argument(help: "Node id.") var node: String

    func run() async throws {
        try await runReporting {
            let result = try await options.balancerClient().call(.POST, "/nodes/\(node)/undrain")
            if options.json { return printJSON(result) }
            print("\(node) undrained")
        }
    }
}

/// `gatewayctl policy set|get`.
struct Policy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or switch the balancing policy (round_robin, weighted, least_request, peak_ewma, consistent_hash).",
        subcommands: [Set.self, Get.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Switch every balancer's policy.")
        @OptionGroup var options: CtlOptions
        @Argument(help: "round_robin, weighted, least_request, peak_ewma or consistent_hash.") var policy: String

        func run() async throws {
            try await runReporting {
                let result = try await options.balancerClient().call(.PUT, "/policy", body: ["policy": policy])
                if options.json { return printJSON(result) }
                print("policy set to \(policy)")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the balancer's policy.")
        @OptionGroup var options: CtlOptions

        func run() async throws {
            try await runReporting {
                let result = try await options.balancerClient().call(.GET, "/policy")
                if options.json { return printJSON(result) }
                print(cell((result as? [String: Any])?["policy"]))
            }
        }
    }
}

/// `gatewayctl health URL`: asks any service's admin listener whether it is alive.
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a service's /health endpoint (no token needed).")
    @Argument(help: "Admin base URL, e.g. http://127.0.0.1:9101") var url: String

    func run() async throws {
        try await runReporting {
            let result = try await AdminClient(base: url, token: "").call(.GET, "/health")
            printJSON(result)
        }
    }
}

import Testing

@testable import EdgeBalancer

@Suite struct StaticNodesTests {
    /// Entries separated by `;` with key=value fields.
    @Test func parsesEntries() throws {
        let nodes = try StaticNodes.parse("id=a,host=127.0.0.1,port=8081,weight=1,region=eu; host=10.0.0.2,port=80,zone=z1").get()
        #expect(nodes.count == 2)
        #expect(nodes[0] == NodeDescriptor(id: "a", address: "127.0.0.1", port: 8081, region: "eu", configuredWeight: 1))
        #expect(nodes[1].id == "10.0.0.2:80")
        #expect(nodes[1].configuredWeight == 100)
        #expect(nodes[1].zone == "z1")
    }

    /// Each mistake is named.
    @Test(arguments: [
        ("id=a,port=1", "missing host"),
        ("id=a,host=h,port=0", "port must be 1–65535"),
        ("id=a,host=h,port=1,weight=-1", "weight must be an integer in 0–10000"),
        ("id=a,host=h,port=1,color=red", "unknown key color (expected id, host, port, weight, region, zone)"),
        ("id=a,host=h,port=1;id=a,host=i,port=2", "duplicate node id a"),
    ])
    func rejectsMistakes(text: String, message: String) {
        guard case .failure(let problem) = StaticNodes.parse(text) else {
            Issue.record("accepted \(text)")
            return
        }
        #expect(problem.message == message)
    }
}

import GatewayCore
import Testing

@testable import GatewayEngine

@Suite struct EngineEventTests {
    /// The engine's messages are the cluster's: what it publishes decodes as `ClusterEvent` and back.
    @Test func speaksTheClusterEventFormat() throws {
        let hash = String(repeating: "ab", count: 32)
        #expect(ClusterEvent(json: EngineEvent.keyRevoked(hashPrefix: hash).message) == .keyRevoked(hash: hash))
        #expect(ClusterEvent(json: EngineEvent.apisChanged(version: 7).message) == .apisChanged(version: 7))
        #expect(EngineEvent(message: ClusterEvent.keyRevoked(hash: hash).json) == .keyRevoked(hashPrefix: hash))
        #expect(EngineEvent(message: ClusterEvent.apisChanged(version: 9).json) == .apisChanged(version: 9))
        #expect(EngineEvent(message: ClusterEvent.nodeUp(node: "n1").json) == .other(type: "node_up"))
        // The definition store's own announcement (from Lua) carries the id too.
        #expect(EngineEvent(message: #"{"type":"apis_changed","version":3,"id":"orders"}"#) == .apisChanged(version: 3))
        #expect(EngineEvent(message: #"{"type":"key_revoked","key_id":"3f2a9c01b7e4"}"#) == .keyRevoked(hashPrefix: "3f2a9c01b7e4"))
        #expect(EngineEvent(message: #"{"type":"key_revoked","key_id":""}"#) == nil, "an empty prefix would match every key")
        #expect(EngineEvent(message: "not json") == nil)
        #expect(EngineEvent(message: #"{"no":"type"}"#) == nil)
    }
}

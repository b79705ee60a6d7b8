import GatewayTesting
import Testing

@testable import GatewayEngine

/// `EngineRouter.isSafe` checks ASCII paths byte by byte; it must decide exactly as the character-based
/// check (`isSafeUnicode`) it replaces on the hot path.
@Suite struct PathSafetyTests {
    @Test func knownPaths() {
        let safe = ["/", "/orders", "/orders/42", "/a/b/", "//a", "/a.b", "/...", "/a/.../b", "/.well-known/x", "/%2", "/%2x", "/a%20b", "/%5"]
        let unsafe = [
            "", "orders", "/..", "/.", "/a/../b", "/a/./b", "/a/..", "/a/.", "/a\\b", "/%2f", "/%2F", "/a%2Fb", "/%5c",
            "/%5C", "/%2e", "/%2E%2e/x", "./a", "../a",
        ]
        for path in safe {
            #expect(EngineRouter.isSafe(path), "\(path)")
            #expect(EngineRouter.isSafeUnicode(path), "\(path)")
        }
        for path in unsafe {
            #expect(!EngineRouter.isSafe(path), "\(path)")
            #expect(!EngineRouter.isSafeUnicode(path), "\(path)")
        }
        // Not ASCII: the character-based check decides.
        #expect(EngineRouter.isSafe("/caf\u{E9}/men\u{FC}"))
        #expect(!EngineRouter.isSafe("/caf\u{E9}/../x"))
    }

    @Test func randomASCIIPathsDecideAsTheCharacterCheck() {
        let alphabet = Array("/./.%2fFeEcC5\\ab".utf8)
        var rng = SplitMix64(seed: 0x5eed)
        for _ in 0..<20_000 {
            let length = Int(rng.next() % 12)
            let bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let path = String(decoding: bytes, as: UTF8.self)
            #expect(EngineRouter.isSafe(path) == EngineRouter.isSafeUnicode(path), "\(path)")
        }
    }
}

/// `X-Gateway-Client-ID` values: a JWT identity claim can hold anything, a header field cannot.
@Suite struct ClientIDHeaderTests {
    @Test func visibleASCIIPassesAndTheRestIsPercentEncoded() {
        #expect(EngineRouter.headerSafe("key:0123abcd") == "key:0123abcd")
        #expect(EngineRouter.headerSafe("jwt:a b") == "jwt:a%20b")
        #expect(EngineRouter.headerSafe("jwt:x\r\nX-Evil: 1") == "jwt:x%0D%0AX-Evil:%201")
        #expect(EngineRouter.headerSafe("jwt:100%") == "jwt:100%25")
        #expect(EngineRouter.headerSafe("jwt:é") == "jwt:%C3%A9")
    }
}

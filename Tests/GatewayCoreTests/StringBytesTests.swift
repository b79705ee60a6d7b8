import GatewayCore
import Testing

@Suite struct StringBytesTests {
    /// The same index as the generic search, for small (inline) and large strings, with multi-byte
    /// characters before the byte, and nil when it is absent.
    @Test func firstUTF8IndexMatchesTheGenericSearch() {
        let cases = ["/a?b", "?", "", "/no-query", "/é/ü?x=1", String(repeating: "/segment", count: 40) + "?q=1&r=2", "ünïcödé", "a??b"]
        for text in cases {
            let expected = text.utf8.firstIndex(of: UInt8(ascii: "?"))
            #expect(text.firstUTF8Index(of: UInt8(ascii: "?")) == expected, "\(text)")
            if let q = text.firstUTF8Index(of: UInt8(ascii: "?")) {
                #expect(text[q...].first == "?")
            }
        }
        let sub = Substring("xx/p?q").dropFirst(2)
        #expect(String(sub).firstUTF8Index(of: UInt8(ascii: "?")).map { String(sub)[..<$0] } == "/p")
    }
}

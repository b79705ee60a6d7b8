import Testing

@testable import GatewayCore

@Suite struct HexTests {
    @Test func lowerCaseHexOfEveryByteValue() {
        #expect([UInt8]().hexString == "")
        #expect([0x00, 0x09, 0x0a, 0x7f, 0x80, 0xff].hexString == "00090a7f80ff")
        let all = (0...255).map { UInt8($0) }
        #expect(all.hexString == all.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
    }
}

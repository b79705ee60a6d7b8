import NIOHTTP1
import Testing

@testable import GatewayCore

@Suite struct HopByHopTests {
    /// The fixed hop-by-hop headers go in any letter case; end-to-end headers stay.
    @Test func removesFixedHopByHopHeadersInAnyCase() {
        var headers: HTTPHeaders = [
            "Host": "example", "CONNECTION": "keep-alive", "Keep-Alive": "timeout=5", "te": "trailers",
            "Transfer-Encoding": "chunked", "Proxy-Authorization": "Basic x", "Upgrade": "h2c", "X-Custom": "1",
            "Content-Length": "3",
        ]
        HopByHop.strip(&headers)
        #expect(headers.map(\.name).sorted() == ["Content-Length", "Host", "X-Custom"])
    }

    /// Headers the `Connection` header names are hop-by-hop too, except `Content-Length` (framing).
    @Test func removesHeadersNamedByConnectionButKeepsContentLength() {
        var headers: HTTPHeaders = [
            "Connection": "X-Secret, close, Content-Length", "x-secret": "s", "X-Secret": "t", "Content-Length": "5", "Accept": "*/*",
        ]
        HopByHop.strip(&headers)
        #expect(headers.map(\.name).sorted() == ["Accept", "Content-Length"])
        #expect(headers.first(name: "content-length") == "5")
    }

    /// Nothing to remove: the headers are untouched, order included.
    @Test func leavesEndToEndHeadersAlone() {
        var headers: HTTPHeaders = ["B": "1", "A": "2", "Teapot": "3", "Tex": "4"]
        HopByHop.strip(&headers)
        #expect(headers.map(\.name) == ["B", "A", "Teapot", "Tex"])
    }

    @Test func comparesNamesIgnoringASCIICaseOnly() {
        #expect(HopByHop.equalsIgnoringASCIICase("Keep-ALIVE", "keep-alive"))
        #expect(!HopByHop.equalsIgnoringASCIICase("keep_alive", "keep-alive"))
        #expect(!HopByHop.equalsIgnoringASCIICase("te", "tex"))
        #expect(!HopByHop.equalsIgnoringASCIICase("@", "`"))  // differ only in bit 0x20, not letters
        // Longer than a small string, and one made from a slice: compared in place as well.
        let long = "X-Forwarded-Proto-Long-Name"
        #expect(HopByHop.equalsIgnoringASCIICase(long, long.uppercased()) && HopByHop.equalsIgnoringASCIICase(long.lowercased(), long))
        #expect(!HopByHop.equalsIgnoringASCIICase(long, "X-Forwarded-Proto-Long-Namf"))
        #expect(HopByHop.equalsIgnoringASCIICase(String("a-Keep-Alive".dropFirst(2)), "keep-alive"))
        #expect(!HopByHop.equalsIgnoringASCIICase("é", "É"))  // not ASCII: only exact bytes match
        #expect(HopByHop.isHopByHop("TE") && HopByHop.isHopByHop("proxy-authorization") && !HopByHop.isHopByHop("x"))
    }

    /// The client's address is appended to every X-Forwarded-For it sent; the proto, host and request id
    /// it sent are replaced, never duplicated.
    @Test func forwardedHeadersAppendTheClientAndReplaceSpoofedValues() {
        var headers: HTTPHeaders = [
            "x-forwarded-for": "10.0.0.1", "X-Forwarded-For": "10.0.0.2", "X-FORWARDED-PROTO": "https",
            "X-Forwarded-Host": "evil", "x-request-id": "theirs", "Accept": "*/*",
        ]
        let fields = HopByHop.takeForwarded(&headers, clientIP: "127.0.0.9", scheme: "http", host: "api.example", requestID: "ours")
        #expect(fields == ForwardedFields(forwardedFor: "10.0.0.1, 10.0.0.2, 127.0.0.9", proto: "http", host: "api.example", requestID: "ours"))
        #expect(headers.map(\.name) == ["Accept"], "the client's own values are taken out")
        headers.add(contentsOf: fields.headers)
        #expect(headers["X-Forwarded-For"] == ["10.0.0.1, 10.0.0.2, 127.0.0.9"])
        #expect(headers["X-Forwarded-Proto"] == ["http"])
        #expect(headers["X-Forwarded-Host"] == ["api.example"])
        #expect(headers["X-Request-ID"] == ["ours"])
        #expect(headers["Accept"] == ["*/*"])

        var fresh: HTTPHeaders = ["Host": "a"]
        let freshFields = HopByHop.takeForwarded(&fresh, clientIP: "::1", scheme: "https", host: "", requestID: "r1")
        fresh.add(contentsOf: freshFields.headers)
        #expect(fresh.map(\.name) == ["Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-ID"])
    }

    /// A trusted proxy's `X-Forwarded-Proto` (`http`/`https` only) and `X-Forwarded-Host` go on, the first
    /// of each; anything else in `X-Forwarded-Proto` falls back to this hop's scheme.
    @Test func trustedProxyKeepsSchemeAndHost() {
        var headers: HTTPHeaders = [
            "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "api.example.com", "Accept": "*/*",
        ]
        let fields = HopByHop.takeForwarded(
            &headers, clientIP: "10.0.0.2", scheme: "http", host: "engine-1:8001", requestID: "r", trustingClient: true)
        #expect(fields == ForwardedFields(forwardedFor: "203.0.113.7, 10.0.0.2", proto: "https", host: "api.example.com", requestID: "r"))
        #expect(headers.map(\.name) == ["Accept"])

        var odd: HTTPHeaders = ["X-Forwarded-Proto": "javascript"]
        let oddFields = HopByHop.takeForwarded(&odd, clientIP: "10.0.0.2", scheme: "http", host: "h", requestID: "r", trustingClient: true)
        #expect(oddFields.proto == "http")
    }
}

@Suite struct TrustedProxiesTests {
    /// The original client is the rightmost address of the chain that is not a trusted proxy: what the
    /// client itself wrote further left is never believed.
    @Test func originalClientIsTheRightmostUntrustedAddress() throws {
        let trusted = try AddressRanges(parsing: ["10.0.0.0/8", "::1"])
        #expect(trusted.originalClient(chain: "203.0.113.9, 10.0.0.2") == "203.0.113.9")
        #expect(trusted.originalClient(chain: "1.1.1.1, 203.0.113.9, 10.1.0.7, 10.0.0.2") == "203.0.113.9", "through two proxies")
        #expect(trusted.originalClient(chain: "forged, 203.0.113.9,10.0.0.2") == "203.0.113.9", "left of the client: ignored")
        #expect(trusted.originalClient(chain: "2001:db8::7, ::1") == "2001:db8::7")
        #expect(trusted.originalClient(chain: "10.9.9.9, 10.0.0.2") == "10.9.9.9", "all trusted: the leftmost")
        #expect(trusted.originalClient(chain: "203.0.113.9, nonsense, 10.0.0.2") == nil, "a trusted proxy that wrote nonsense")
    }

    @Test func matchesAddressesAndRanges() throws {
        let trusted = try AddressRanges(parsing: ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1"])
        #expect(trusted.contains("10.200.3.4"))
        #expect(!trusted.contains("11.0.0.1"))
        #expect(trusted.contains("192.168.1.7"))
        #expect(!trusted.contains("192.168.1.8"))
        #expect(trusted.contains("2001:db8:1::5"))
        #expect(!trusted.contains("2001:db9::5"))
        #expect(trusted.contains("::1"))
        #expect(trusted.contains("::ffff:10.1.2.3"), "IPv4-mapped IPv6 counts as IPv4")
        #expect(!trusted.contains("unknown"))
        #expect(!AddressRanges().contains("10.0.0.1"), "empty trusts no one")
        #expect(try AddressRanges(parsing: ["0.0.0.0/0"]).contains("198.51.100.1"))
        #expect(throws: AddressRangeError.invalid("10.0.0.0/33")) { try AddressRanges(parsing: ["10.0.0.0/33"]) }
        #expect(throws: AddressRangeError.invalid("balancer-1")) { try AddressRanges(parsing: ["balancer-1"]) }
        // The address parser itself.
        #expect(AddressRanges.bytes(of: "2001:db8::1") == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])
        #expect(AddressRanges.bytes(of: "::") == [UInt8](repeating: 0, count: 16))
        #expect(AddressRanges.bytes(of: "::ffff:1.2.3.4") == [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 1, 2, 3, 4])
        #expect(AddressRanges.bytes(of: "1:2:3:4:5:6:7:8") == [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8])
        for bad in ["1.2.3", "1.2.3.256", "1::2::3", "12345::1", "1:2:3:4:5:6:7:8:9", "::g", "", "1.2.3.4.5", "1:2:3:4:5:6:7::8:9"] {
            #expect(AddressRanges.bytes(of: bad) == nil, "\(bad)")
        }
    }
}

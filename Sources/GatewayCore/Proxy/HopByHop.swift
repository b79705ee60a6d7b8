import NIOHTTP1

/// Header hygiene for proxies (RFC 9110 §7.6.1): hop-by-hop headers stay on their hop.
public enum HopByHop {
    static let fixed: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Removes hop-by-hop headers, including those `Connection` names.
    public static func strip(_ headers: inout HTTPHeaders) {
        var named: [String] = []
        for value in headers[canonicalForm: "connection"] {
            named.append(value.lowercased())
        }
        var needsRemoval = !named.isEmpty
        if !needsRemoval {
            for (name, _) in headers where fixed.contains(name.lowercased()) {
                needsRemoval = true
                break
            }
        }
        guard needsRemoval else { return }
        for name in fixed { headers.remove(name: name) }
        for name in named where !name.isEmpty { headers.remove(name: name) }
    }

    /// Sets `X-Forwarded-For` (appending the client), `X-Forwarded-Proto`, `X-Forwarded-Host` and
    /// `X-Request-ID` on a request going upstream.
    public static func addForwarded(_ headers: inout HTTPHeaders, clientIP: String, scheme: String, host: String, requestID: String) {
        if let previous = headers.first(name: "X-Forwarded-For") {
            headers.replaceOrAdd(name: "X-Forwarded-For", value: previous + ", " + clientIP)
        } else {
            headers.add(name: "X-Forwarded-For", value: clientIP)
        }
        headers.replaceOrAdd(name: "X-Forwarded-Proto", value: scheme)
        if !host.isEmpty { headers.replaceOrAdd(name: "X-Forwarded-Host", value: host) }
        headers.replaceOrAdd(name: RequestID.headerName, value: requestID)
    }
}

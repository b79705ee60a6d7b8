import NIOHTTP1

/// The `Cache-Control` directives the response cache acts on (RFC 9111 §5.2).
struct CacheControl: Sendable, Hashable {
    var noStore = false
    var noCache = false
    var isPrivate = false
    var isPublic = false
    var maxAge: Int?
    var sharedMaxAge: Int?

    init() {}

    /// Parses every `Cache-Control` field in `headers` (and `Pragma: no-cache`, for requests).
    init(_ headers: HTTPHeaders) {
        for value in headers["cache-control"] {
            for part in value.split(separator: ",") {
                let directive = part.trimmingSpaces()
                let (name, argument): (Substring, Substring?) =
                    if let eq = directive.firstIndex(of: "=") {
                        (directive[..<eq].trimmingSpaces(), directive[directive.index(after: eq)...].trimmingSpaces())
                    } else {
                        (directive, nil)
                    }
                let seconds = argument.flatMap { Int($0.trimmingCharacters(in: "\"")) }.map { max(0, $0) }
                switch name.lowercased() {
                case "no-store": noStore = true
                case "no-cache": noCache = true
                case "private": isPrivate = true
                case "public": isPublic = true
                case "max-age": maxAge = seconds ?? 0
                case "s-maxage": sharedMaxAge = seconds ?? 0
                default: break
                }
            }
        }
        if headers["pragma"].contains(where: { $0.lowercased().contains("no-cache") }) { noCache = true }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }

    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}

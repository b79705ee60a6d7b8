import NIOHTTP1

/// An HTTP status class, as a metric dimension.
enum StatusClass: String, CaseIterable, Sendable {
    case informational = "1xx", success = "2xx", redirection = "3xx", clientError = "4xx", serverError = "5xx"

    init(_ status: HTTPResponseStatus) {
        switch status.code {
        case ..<200: self = .informational
        case 200..<300: self = .success
        case 300..<400: self = .redirection
        case 400..<500: self = .clientError
        default: self = .serverError
        }
    }

    var index: Int {
        switch self {
        case .informational: 0
        case .success: 1
        case .redirection: 2
        case .clientError: 3
        case .serverError: 4
        }
    }
}

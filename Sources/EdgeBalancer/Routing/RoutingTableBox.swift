import Synchronization

/// The routing table in use, swapped whole by the controller and read by every request.
final class RoutingTableBox: Sendable {
    private let current: Mutex<RoutingTable>

    init(_ table: RoutingTable = .empty) {
        current = Mutex(table)
    }

    var table: RoutingTable { current.withLock { $0 } }

    func install(_ table: RoutingTable) {
        current.withLock { $0 = table }
    }
}

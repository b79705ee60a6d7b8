import NIOConcurrencyHelpers

/// Holds the route table the data plane reads; a reload swaps in a new table whole.
///
/// A read takes a lock for the time it takes to copy one reference, so the hot path never waits on a
/// reload (the table is built before the swap).
final class RouteTableHolder: Sendable {
    struct Snapshot: Sendable {
        var table: RouteTable
        /// The store version the table was built from; nil until the first load.
        var storeVersion: APIDefinitionStore.Version?
    }

    private let box: NIOLockedValueBox<Snapshot>

    init(table: RouteTable = .empty, storeVersion: APIDefinitionStore.Version? = nil) {
        self.box = NIOLockedValueBox(Snapshot(table: table, storeVersion: storeVersion))
    }

    /// The table in use.
    var table: RouteTable { box.withLockedValue { $0.table } }

    var snapshot: Snapshot { box.withLockedValue { $0 } }

    /// Whether definitions have been loaded from the store at least once (for `/ready`).
    var isLoaded: Bool { box.withLockedValue { $0.storeVersion != nil } }

    func swap(_ table: RouteTable, storeVersion: APIDefinitionStore.Version) {
        box.withLockedValue { $0 = Snapshot(table: table, storeVersion: storeVersion) }
    }
}

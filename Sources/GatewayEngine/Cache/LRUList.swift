/// A map that remembers use order: lookups through ``get(_:)`` make an entry the most recent, and
/// ``removeLeastRecent()`` takes the oldest. Nodes live in one array linked by index, so there are no
/// per-entry allocations beyond the values themselves.
struct LRUList<Key: Hashable, Value> {
    fileprivate struct Node {
        var key: Key
        var value: Value
        var newer: Int?
        var older: Int?
    }

    private var index: [Key: Int] = [:]
    private var nodes: [Node?] = []
    private var free: [Int] = []
    /// Most recently used.
    private var newest: Int?
    /// Least recently used.
    private var oldest: Int?

    init() {}

    var count: Int { index.count }
    var isEmpty: Bool { index.isEmpty }

    /// The value, made most recent.
    mutating func get(_ key: Key) -> Value? {
        guard let i = index[key] else { return nil }
        moveToNewest(i)
        // Through the buffer: reads the value in place instead of copying the whole node (its key too) out.
        return nodes.withUnsafeBufferPointer { $0[i]?.value }
    }

    /// The value, without touching the order.
    func peek(_ key: Key) -> Value? {
        index[key].flatMap { nodes[$0]?.value }
    }

    /// Inserts or replaces, making the entry most recent; returns the replaced value.
    @discardableResult
    mutating func set(_ key: Key, _ value: Value) -> Value? {
        if let i = index[key] {
            let old = nodes[i]?.value
            nodes[i]?.value = value
            moveToNewest(i)
            return old
        }
        let node = Node(key: key, value: value, newer: nil, older: newest)
        let i: Int
        if let reused = free.popLast() {
            i = reused
            nodes[i] = node
        } else {
            i = nodes.count
            nodes.append(node)
        }
        if let n = newest { nodes[n]?.newer = i }
        newest = i
        if oldest == nil { oldest = i }
        index[key] = i
        return nil
    }

    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let i = index.removeValue(forKey: key) else { return nil }
        let value = nodes[i]?.value
        unlink(i)
        nodes[i] = nil
        free.append(i)
        return value
    }

    mutating func removeLeastRecent() -> (key: Key, value: Value)? {
        guard let i = oldest, let node = nodes[i] else { return nil }
        remove(node.key)
        return (node.key, node.value)
    }

    /// Removes every entry matching `predicate`; returns what was removed.
    mutating func removeAll(where predicate: (Key, Value) -> Bool) -> [(key: Key, value: Value)] {
        var removed: [(key: Key, value: Value)] = []
        for case let node? in nodes where predicate(node.key, node.value) {
            removed.append((node.key, node.value))
        }
        for (key, _) in removed { remove(key) }
        return removed
    }

    mutating func removeAll() {
        self = LRUList()
    }

    /// Keys from most to least recent (for tests).
    var keysNewestFirst: [Key] {
        var keys: [Key] = []
        var cursor = newest
        while let i = cursor, let node = nodes[i] {
            keys.append(node.key)
            cursor = node.older
        }
        return keys
    }

    private mutating func moveToNewest(_ i: Int) {
        guard newest != i else { return }
        unlink(i)
        nodes[i]?.older = newest
        nodes[i]?.newer = nil
        if let n = newest { nodes[n]?.newer = i }
        newest = i
        if oldest == nil { oldest = i }
    }

    private mutating func unlink(_ i: Int) {
        guard let node = nodes[i] else { return }
        if let newer = node.newer { nodes[newer]?.older = node.older } else { newest = node.older }
        if let older = node.older { nodes[older]?.newer = node.newer } else { oldest = node.newer }
        nodes[i]?.newer = nil
        nodes[i]?.older = nil
    }
}

extension LRUList: Sendable where Key: Sendable, Value: Sendable {}
extension LRUList.Node: Sendable where Key: Sendable, Value: Sendable {}

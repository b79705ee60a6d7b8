/// A map that remembers use order: lookups through ``get(_:)`` make an entry the most recent, and
/// ``removeLeastRecent()`` takes the oldest. Nodes live in one array linked by index, so there are no
/// per-entry allocations beyond the values themselves.
struct LRUList<Key: Hashable, Value> {
    fileprivate struct Node {
        var key: Key
        var value: Value
    }

    /// A slot's place in the use order. Kept apart from the nodes, so that reordering on every hit
    /// touches two integers per neighbour and never copies a node (its key and value) out and back.
    fileprivate struct Links {
        var newer: Int?
        var older: Int?
    }

    private var index: [Key: Int] = [:]
    private var nodes: [Node?] = []
    private var links: [Links] = []
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
        guard let i = index[key] else { return nil }
        return nodes.withUnsafeBufferPointer { $0[i]?.value }
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
        let node = Node(key: key, value: value)
        let i: Int
        if let reused = free.popLast() {
            i = reused
            nodes[i] = node
            links[i] = Links(newer: nil, older: newest)
        } else {
            i = nodes.count
            nodes.append(node)
            links.append(Links(newer: nil, older: newest))
        }
        if let n = newest { links[n].newer = i }
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
            cursor = links[i].older
        }
        return keys
    }

    private mutating func moveToNewest(_ i: Int) {
        guard newest != i else { return }
        unlink(i)
        links[i] = Links(newer: nil, older: newest)
        if let n = newest { links[n].newer = i }
        newest = i
        if oldest == nil { oldest = i }
    }

    private mutating func unlink(_ i: Int) {
        let link = links[i]
        if let newer = link.newer { links[newer].older = link.older } else { newest = link.older }
        if let older = link.older { links[older].newer = link.newer } else { oldest = link.newer }
        links[i] = Links(newer: nil, older: nil)
    }
}

extension LRUList: Sendable where Key: Sendable, Value: Sendable {}
extension LRUList.Node: Sendable where Key: Sendable, Value: Sendable {}
extension LRUList.Links: Sendable {}

/// A map that remembers use order: lookups through ``get(_:)`` make an entry the most recent, and
/// ``removeLeastRecent()`` takes the oldest. Entries live in arrays linked by index, so there are no
/// per-entry allocations beyond the keys and values themselves.
struct LRUList<Key: Hashable, Value> {
    /// A slot's place in the use order. Kept apart from the keys and values, so that reordering on every hit
    /// touches two integers per neighbour and never copies a node (its key and value) out and back.
    fileprivate struct Links {
        var newer: Int?
        var older: Int?
    }

    private var index: [Key: Int] = [:]
    /// Slot by slot (nil: a free slot). Keys and values apart, so a lookup copies out only the value.
    private var keys: [Key?] = []
    private var values: [Value?] = []
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
        return values[i]
    }

    /// The value, without touching the order.
    func peek(_ key: Key) -> Value? {
        guard let i = index[key] else { return nil }
        return values[i]
    }

    /// Inserts or replaces, making the entry most recent; returns the replaced value.
    @discardableResult
    mutating func set(_ key: Key, _ value: Value) -> Value? {
        if let i = index[key] {
            let old = values[i]
            values[i] = value
            moveToNewest(i)
            return old
        }
        let i: Int
        if let reused = free.popLast() {
            i = reused
            keys[i] = key
            values[i] = value
            links[i] = Links(newer: nil, older: newest)
        } else {
            i = keys.count
            keys.append(key)
            values.append(value)
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
        let value = values[i]
        unlink(i)
        keys[i] = nil
        values[i] = nil
        free.append(i)
        return value
    }

    mutating func removeLeastRecent() -> (key: Key, value: Value)? {
        guard let i = oldest, let key = keys[i], let value = values[i] else { return nil }
        remove(key)
        return (key, value)
    }

    /// Removes every entry matching `predicate`; returns what was removed.
    mutating func removeAll(where predicate: (Key, Value) -> Bool) -> [(key: Key, value: Value)] {
        var removed: [(key: Key, value: Value)] = []
        for i in keys.indices {
            if let key = keys[i], let value = values[i], predicate(key, value) { removed.append((key, value)) }
        }
        for (key, _) in removed { remove(key) }
        return removed
    }

    mutating func removeAll() {
        self = LRUList()
    }

    /// Keys from most to least recent (for tests).
    var keysNewestFirst: [Key] {
        var order: [Key] = []
        var cursor = newest
        while let i = cursor, let key = keys[i] {
            order.append(key)
            cursor = links[i].older
        }
        return order
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
extension LRUList.Links: Sendable {}

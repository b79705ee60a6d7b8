/// A connection's open HTTP/2 streams by id, with a dictionary's interface, kept in two short arrays
/// and found by a linear search from the newest entry.
///
/// A connection has at most its concurrent-stream limit open (100 by default; a handful under most
/// loads), and a stream's frames are looked up several times per request. Comparing a few 32-bit ids is
/// cheaper than hashing one: a `Dictionary` lookup hashes its key with SipHash every time (about 170
/// instructions), which made stream lookups several percent of an HTTP/2 request's CPU. Removal moves the
/// last entry into the gap, so the order of ``keys`` and ``values`` is not the order of insertion.
struct StreamTable<Key: Equatable, Value> {
    private(set) var keys: [Key] = []
    private(set) var values: [Value] = []

    init() {}

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }

    private func index(of key: Key) -> Int? {
        var i = keys.count - 1
        while i >= 0 {
            if keys[i] == key { return i }
            i -= 1
        }
        return nil
    }

    /// The value for `key`; setting nil removes it, setting a value adds or replaces it.
    subscript(key: Key) -> Value? {
        get {
            guard let i = index(of: key) else { return nil }
            return values[i]
        }
        set {
            if let i = index(of: key) {
                if let newValue {
                    values[i] = newValue
                } else {
                    remove(at: i)
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard let i = index(of: key) else { return nil }
        let value = values[i]
        remove(at: i)
        return value
    }

    private mutating func remove(at i: Int) {
        let last = keys.count - 1
        if i != last {
            keys.swapAt(i, last)
            values.swapAt(i, last)
        }
        keys.removeLast()
        values.removeLast()
    }
}

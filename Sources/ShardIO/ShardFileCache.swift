import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A thread-safe least-recently-used cache of open shards keyed by shard id, which bounds how many
/// mappings (`vm.max_map_count`) and descriptors (`RLIMIT_NOFILE`) are live at once.
///
/// A miss calls `open` outside the lock, so slow opens do not block hits on other shards. Two
/// threads that miss the same id at once may both open it; the first to finish is kept and the
/// other's value is dropped. When the cache is full, the least recently used value is evicted:
/// the cache drops its reference and the value is released when its last user drops it, so a
/// reader holding a value mid-read stays valid.
///
/// ```swift
/// let cache = ShardFileCache<MappedFile>(capacity: ShardFileCache<MappedFile>.defaultCapacity()) { id in
///     try MappedFile(path: shardPaths[Int(id)])
/// }
/// let shard = try cache.value(for: 3)
/// ```
public final class ShardFileCache<Value: AnyObject & Sendable>: Sendable {
    /// One cached value in the recency list.
    private struct Slot {
        var id: Int64
        var value: Value?
        var newer: Int
        var older: Int
    }

    /// The cache contents: a dictionary into a doubly linked recency list stored in an array.
    private struct State {
        var slots: [Slot] = []
        var index: [Int64: Int] = [:]
        var freeSlots: [Int] = []
        /// Most and least recently used slots (-1 when empty).
        var newest = -1
        var oldest = -1
        var evictions = 0

        mutating func unlink(_ i: Int) {
            let s = slots[i]
            if s.newer >= 0 { slots[s.newer].older = s.older } else { newest = s.older }
            if s.older >= 0 { slots[s.older].newer = s.newer } else { oldest = s.newer }
        }

        mutating func pushNewest(_ i: Int) {
            slots[i].newer = -1
            slots[i].older = newest
            if newest >= 0 { slots[newest].newer = i }
            newest = i
            if oldest < 0 { oldest = i }
        }

        /// The cached value for `id`, marked most recently used.
        mutating func hit(_ id: Int64) -> Value? {
            guard let i = index[id] else { return nil }
            if newest != i {
                unlink(i)
                pushNewest(i)
            }
            return slots[i].value
        }

        /// Inserts `value` as most recently used; returns the evicted value, if any, so that it is
        /// released outside the lock.
        mutating func insert(_ id: Int64, _ value: Value, capacity: Int) -> Value? {
            var evicted: Value?
            if index.count >= capacity, oldest >= 0 {
                let victim = oldest
                unlink(victim)
                index[slots[victim].id] = nil
                evicted = slots[victim].value
                slots[victim].value = nil
                freeSlots.append(victim)
                evictions += 1
            }
            let slot = Slot(id: id, value: value, newer: -1, older: -1)
            let i: Int
            if let free = freeSlots.popLast() {
                slots[free] = slot
                i = free
            } else {
                slots.append(slot)
                i = slots.count - 1
            }
            index[id] = i
            pushNewest(i)
            return evicted
        }
    }

    /// The most values held at once.
    public let capacity: Int
    private let opener: @Sendable (Int64) throws -> Value
    private let state = Mutex(State())

    /// Makes an empty cache that opens values with `open` and holds at most `capacity` of them.
    ///
    /// - Precondition: `capacity >= 1`.
    public init(capacity: Int, open: @escaping @Sendable (Int64) throws -> Value) {
        precondition(capacity >= 1, "cache capacity must be at least 1, got \(capacity)")
        self.capacity = capacity
        self.opener = open
    }

    /// The value for shard `id`: the cached one, or a newly opened one (which may evict the least
    /// recently used value).
    ///
    /// ```swift
    /// let shard = try cache.value(for: record.shardID)
    /// ```
    ///
    /// - Throws: whatever `open` throws; nothing is cached then.
    /// - Complexity: O(1) on a hit (amortized, under the lock); a miss adds the cost of `open`.
    public func value(for id: Int64) throws -> Value {
        if let cached = state.withLock({ $0.hit(id) }) { return cached }
        let opened = try opener(id)
        let (result, evicted): (Value, Value?) = state.withLock { state in
            if let raced = state.hit(id) { return (raced, nil) }
            return (opened, state.insert(id, opened, capacity: capacity))
        }
        withExtendedLifetime(evicted) {}  // released here, outside the lock
        return result
    }

    /// The number of values held now (at most ``capacity``).
    public var count: Int { state.withLock { $0.index.count } }

    /// How many values have been evicted to make room since the cache was made.
    public var evictions: Int { state.withLock { $0.evictions } }

    /// A capacity that keeps well inside the process's limits: the smallest of 1024, a quarter of
    /// the soft `RLIMIT_NOFILE` and a quarter of `vm.max_map_count` (read from
    /// `/proc/sys/vm/max_map_count` when available), and at least 8.
    ///
    /// ```swift
    /// let capacity = ShardFileCache<MappedFile>.defaultCapacity()  // 256 with `ulimit -n 1024`
    /// ```
    ///
    /// - Complexity: O(1): one `getrlimit` and one small file read.
    public static func defaultCapacity() -> Int {
        var capacity = 1024
        var limit = rlimit()
        #if canImport(Glibc)
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
            let resource = RLIMIT_NOFILE
        #endif
        if getrlimit(resource, &limit) == 0, limit.rlim_cur != rlim_t.max {
            capacity = min(capacity, Int(clamping: limit.rlim_cur) / 4)
        }
        if let maps = readMaxMapCount() { capacity = min(capacity, maps / 4) }
        return max(capacity, 8)
    }

    /// `vm.max_map_count`, or nil when it cannot be read (not Linux, no /proc).
    private static func readMaxMapCount() -> Int? {
        let fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[..<n], as: UTF8.self)
        return text.split(whereSeparator: { $0 == "\n" || $0 == " " }).first.flatMap { Int($0) }
    }
}

import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import Synchronization

/// Whole copies of shards, by shard number: decompressed copies of compressed shards that cannot
/// be entered in the middle, in RAM up to a capacity in bytes, or, with a ``ShardCacheFolder``, as
/// files in that folder; and downloaded copies of remote shards, in the folder. Of the folder's
/// copies a few dozen are kept open. Evicted least recently used first; a copy being read stays
/// valid for its reader (it is freed when the last holder lets go).
///
/// Made anew for a child process after `fork()` (its locks may have been held by a parent's
/// thread, and a copy being made in the parent is not the child's to wait for).
final class WholeShardCache: Sendable {
    /// The most bytes of copies kept in RAM; a shard larger than this is still decompressed for
    /// the read that needs it, and dropped after. Unused with a folder.
    let capacity: Int64
    /// Where copies go instead of RAM, when set.
    let folder: ShardCacheFolder?

    /// Copies in a folder kept open at once.
    static let openCopies = 64

    private struct State {
        var entries: [Int: WholeShard] = [:]
        var lastUse: [Int: UInt64] = [:]
        var clock: UInt64 = 0
        var bytes: Int64 = 0
    }

    private let state = Mutex(State())
    /// Serializes the decompression of any one shard, so that readers wanting the same shard
    /// wait for one copy rather than making several.
    private let loading = Monitor()
    private let inProgress = Mutex(Set<Int>())

    init(capacity: Int64, folder: ShardCacheFolder? = nil) {
        self.capacity = capacity
        self.folder = folder
    }

    /// The whole decompressed copy of compressed shard `n`, decompressing it first if it is not
    /// cached.
    ///
    /// - Throws: ``CompressedShardError`` when the data does not decompress, or decompresses to
    ///   another size than the index recorded; `IOError` when a folder copy cannot be written.
    func shard(_ n: Int, _ shard: CompressedShards.Shard, _ source: CompressedSource) throws -> WholeShard {
        try copy(n) {
            if let folder { return WholeShard(file: try folder.copy(of: shard, from: source)) }
            return try WholeShard(shard, source)
        }
    }

    /// The copy of shard `n`, made by `make` when it is not cached. One thread makes the copy of
    /// a shard; others wanting the same shard wait for it rather than making another.
    ///
    /// - Throws: what `make` throws.
    func copy(_ n: Int, _ make: () throws -> WholeShard) throws -> WholeShard {
        while true {
            if let hit = state.withLock({ s -> WholeShard? in
                guard let e = s.entries[n] else { return nil }
                s.clock += 1
                s.lastUse[n] = s.clock
                return e
            }) {
                return hit
            }
            // One thread makes shard n's copy; the others wait for it and look again.
            let mine = loading.withLock { () -> Bool in
                let claimed = inProgress.withLock { $0.insert(n).inserted }
                if !claimed { loading.wait() }
                return claimed
            }
            guard mine else { continue }
            defer {
                loading.withLock {
                    _ = inProgress.withLock { $0.remove(n) }
                    loading.broadcast()
                }
            }
            let copy = try make()
            let (limit, weight) = folder == nil ? (capacity, copy.residentBytes) : (Int64(Self.openCopies), 1)
            state.withLock { s in
                guard weight <= limit else { return }
                while s.bytes + weight > limit, let oldest = s.lastUse.min(by: { $0.value < $1.value })?.key {
                    s.bytes -= folder == nil ? s.entries[oldest]!.residentBytes : 1
                    s.entries[oldest] = nil
                    s.lastUse[oldest] = nil
                }
                s.clock += 1
                s.entries[n] = copy
                s.lastUse[n] = s.clock
                s.bytes += weight
            }
            return copy
        }
    }
}

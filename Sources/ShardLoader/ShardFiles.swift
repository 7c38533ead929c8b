import ShardCore
import ShardIO
import ShardIndex

#if canImport(Glibc)
    import Glibc
#endif

/// A shard opened for reading: a descriptor for `pread`, or a mapping.
protocol OpenedShard: AnyObject, Sendable {
    init(path: String) throws(IOError)
    /// The file's status when it was opened.
    var status: FileStatus { get }
}

extension ReadOnlyFile: OpenedShard {}
extension MappedFile: OpenedShard {}

/// Checks shards against the index: the size and modification time recorded at ingest.
enum ShardCheck {
    /// Throws ``ShardChangedError`` unless `status` matches `record`.
    static func verify(_ status: FileStatus, _ record: ShardRecord, indexPath: String) throws(ShardChangedError) {
        if status.size != record.size {
            throw ShardChangedError(
                path: record.path, detail: "size \(record.size) bytes at ingest, \(status.size) now",
                indexPath: indexPath)
        }
        if status.modificationTimeNanoseconds != record.modificationTimeNanoseconds {
            throw ShardChangedError(
                path: record.path, detail: "modification time differs from the one recorded at ingest",
                indexPath: indexPath)
        }
    }

    /// Opens `record`'s file at `path` and checks it.
    ///
    /// - Throws: ``ShardChangedError`` when it is missing or differs; `IOError` otherwise.
    static func open<F: OpenedShard>(_ type: F.Type, _ record: ShardRecord, at path: String, indexPath: String) throws
        -> F
    {
        let file: F
        do { file = try F(path: path) } catch {
            if error.errno == ENOENT {
                throw ShardChangedError(
                    path: record.path, detail: "the file is missing", indexPath: indexPath, isMissing: true)
            }
            throw error
        }
        try verify(file.status, record, indexPath: indexPath)
        return file
    }

    /// The error for the shard at `path` (as opened, not as the index stores it) that ends before
    /// a member it should hold: it shrank after `since`. `size` is where the read or the mapping
    /// ended; the file's size now, from `stat`, is reported when it can be had.
    static func shortRead(
        _ path: String, size: Int64, offset: Int64, _ count: Int, since: String = "the dataset was opened"
    ) -> ShardChangedError {
        let end = (try? FileStatus.of(path))?.size ?? size
        return ShardChangedError(
            truncated: path,
            detail:
                "the shard ends at byte \(end) but \(count) bytes are needed from offset \(offset); it was truncated after \(since): run `shardstore ingest` again"
        )
    }

    /// Checks `record`'s file at `path` with `stat(2)`, without opening it.
    static func stat(_ record: ShardRecord, at path: String, indexPath: String) throws {
        let status: FileStatus
        do { status = try FileStatus.of(path) } catch {
            if error.errno == ENOENT {
                throw ShardChangedError(
                    path: record.path, detail: "the file is missing", indexPath: indexPath, isMissing: true)
            }
            throw error
        }
        try verify(status, record, indexPath: indexPath)
    }
}

/// The dataset's shards, opened as `F` and checked against the index.
///
/// When there are no more shards than `capacity`, every shard is opened at once and kept: a
/// lookup is an array read, with no lock. Otherwise shards are opened on demand into a
/// ``ShardFileCache`` of `capacity` entries, so at most that many descriptors or mappings are live;
/// each is checked again when it is (re)opened.
final class ShardFiles<F: OpenedShard>: Sendable {
    let records: [ShardRecord]
    let paths: [String]
    let indexPath: String
    private let opened: [F?]
    private let cache: ShardFileCache<F>?

    /// Opens (or, beyond `capacity`, only checks with `stat`) the shards whose `used` flag is set.
    ///
    /// - Throws: ``ShardChangedError`` for the first used shard that changed or vanished; `IOError`.
    init(records: [ShardRecord], paths: [String], used: [Bool], capacity: Int, indexPath: String) throws {
        self.records = records
        self.paths = paths
        self.indexPath = indexPath
        let usedCount = used.lazy.filter { $0 }.count
        if usedCount <= capacity {
            opened = try records.indices.map { n in
                guard used[n] else { return nil }
                return try ShardCheck.open(F.self, records[n], at: paths[n], indexPath: indexPath)
            }
            cache = nil
        } else {
            for n in records.indices where used[n] {
                try ShardCheck.stat(records[n], at: paths[n], indexPath: indexPath)
            }
            opened = []
            cache = ShardFileCache<F>(capacity: capacity) { [records, paths] n in
                try ShardCheck.open(F.self, records[Int(n)], at: paths[Int(n)], indexPath: indexPath)
            }
        }
    }

    private init(records: [ShardRecord], paths: [String], indexPath: String, opened: [F?], cache: ShardFileCache<F>?) {
        self.records = records
        self.paths = paths
        self.indexPath = indexPath
        self.opened = opened
        self.cache = cache
    }

    /// The same shards for a child process after `fork()`: the shards kept open are shared
    /// (descriptors and mappings are inherited), and a cache is replaced by a new, empty one,
    /// because a thread of the parent may have held its lock at the fork.
    ///
    /// - Complexity: O(shards).
    func forChildProcess() -> ShardFiles<F> {
        guard cache != nil else { return self }
        let records = records
        let paths = paths
        let indexPath = indexPath
        return ShardFiles(
            records: records, paths: paths, indexPath: indexPath, opened: opened,
            cache: ShardFileCache<F>(capacity: cache!.capacity) { n in
                try ShardCheck.open(F.self, records[Int(n)], at: paths[Int(n)], indexPath: indexPath)
            })
    }

    /// Whether every shard is open (no cache).
    var allOpen: Bool { cache == nil }

    /// The shards kept open (every used shard without a cache; none with one).
    var openNow: [F] { opened.compactMap { $0 } }

    /// How many times the cache closed a shard to make room (0 without a cache).
    var evictions: Int { cache?.evictions ?? 0 }

    /// Shard number `n`, opened and checked.
    @inline(__always)
    func file(_ n: Int) throws -> F {
        if let cache { return try cache.value(for: Int64(n)) }
        if let file = opened[n] { return file }
        return try ShardCheck.open(F.self, records[n], at: paths[n], indexPath: indexPath)
    }
}

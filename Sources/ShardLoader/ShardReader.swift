import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardRemote
import Synchronization

/// A shard that no longer matches the index: changed or vanished since ingest.
public struct ShardChangedError: Error, Sendable, CustomStringConvertible {
    /// The shard's path as stored in the index (as opened, for a shard ``isTruncated`` on read).
    public var path: String
    /// What differs.
    public var detail: String
    /// The index that recorded the shard (empty for a shard ``isTruncated`` on read).
    public var indexPath: String
    /// Whether the shard file is gone.
    public var isMissing: Bool
    /// Whether a read found the shard shorter than it was when the dataset opened it (it was
    /// truncated while being read).
    public var isTruncated: Bool

    public init(path: String, detail: String, indexPath: String, isMissing: Bool = false) {
        self.path = path
        self.detail = detail
        self.indexPath = indexPath
        self.isMissing = isMissing
        isTruncated = false
    }

    /// A shard at `path` (as opened) found truncated by a read: `detail` says where it ends and
    /// what the read needed.
    ///
    /// ```swift
    /// ShardChangedError(truncated: "/d/a.tar", detail: "the shard ends at byte 2560 but ...")
    /// // "cannot read '/d/a.tar' (the shard ends at byte 2560 but ...)"
    /// ```
    public init(truncated path: String, detail: String) {
        self.path = path
        self.detail = detail
        indexPath = ""
        isMissing = false
        isTruncated = true
    }

    public var description: String {
        if isTruncated { return "cannot read '\(path)' (\(detail))" }
        if isMissing {
            return
                "shard '\(path)' is missing (it was indexed in '\(indexPath)'); restore the file, or ingest the remaining shards into a new index"
        }
        return
            "shard '\(path)' changed since ingest (\(detail)); run ingest again (`shardstore ingest \(indexPath) \(path)`) before reading"
    }
}

/// Reads member bytes with `pread`, opening each shard once and checking its size and mtime
/// against the index before the first read, so a changed shard is refused instead of returning
/// wrong bytes. Safe to use from several threads.
///
/// ```swift
/// let reader = try ShardReader(index: IndexReader(path: "ds/index.sqlite"))
/// let bytes = try reader.bytes(of: sample.members[0].location)
/// ```
public final class ShardReader: Sendable {
    /// The folder relative shard paths are resolved against (the index file's real folder).
    public let indexDirectory: String
    /// The index file's path as given.
    public let indexPath: String
    private let shards: [Int64: ShardRecord]
    private let files = Mutex<[Int64: ReadOnlyFile]>([:])
    /// The compressed shards (numbered by their place in `numbers`), read through their
    /// decompressors; nil when the index has none.
    private let compressed: CompressedShards?
    /// The remote shards (numbered as `compressed`'s), read by range requests; nil when the index
    /// has none.
    private let remote: RemoteShards?
    private let numbers: [Int64: Int]

    /// A reader for the shards recorded in `index`; remote shards are reached as `configuration`
    /// says (nil: from the environment and the AWS files), and read from whole copies in the cache
    /// folder `cacheDirectory` (downloaded on first use, at most `cacheLimit` bytes of copies, as
    /// ``Dataset/Options/cacheDirectory`` does; nil reads `SHARDSTORE_CACHE_DIR`, and without one,
    /// by range requests).
    ///
    /// ```swift
    /// let shards = try ShardReader(index: reader, cacheDirectory: "/scratch/cache")
    /// ```
    ///
    /// - Throws: `IOError` when the index's folder cannot be resolved; ``DatasetError`` when a
    ///   remote shard's location, the remote configuration or the cache folder cannot be used.
    public init(
        index: IndexReader, remote configuration: RemoteConfiguration? = nil, cacheDirectory: String? = nil,
        cacheLimit: Int64? = nil
    ) throws {
        indexPath = index.path
        indexDirectory = try Paths.real(Paths.directory(of: Paths.absolute(index.path)))
        var byID: [Int64: ShardRecord] = [:]
        let records = try index.shards()
        var numbers: [Int64: Int] = [:]
        for (n, s) in records.enumerated() {
            byID[s.id] = s
            numbers[s.id] = n
        }
        shards = byID
        self.numbers = numbers
        let directory = indexDirectory
        let packed = records.filter(\.isCompressed).map(\.id)
        // Shards that cannot be entered in the middle are decompressed forward to the member a
        // read needs, never whole into memory (a command reads a member or two).
        compressed = try CompressedShards.make(
            records: records, paths: records.map { Paths.resolveStoredShardPath($0.path, indexDirectory: directory) },
            used: records.map(\.isCompressed), tables: try index.seekTables(forShards: packed), indexPath: index.path,
            cacheCapacity: 0, streamOnly: true)
        let isRemote = records.map { RemoteLocation.hasRemoteScheme($0.path) }
        remote = try RemoteShards.make(
            records: records, used: isRemote, configuration: configuration, indexPath: index.path,
            folder: isRemote.contains(true) ? try ShardCacheFolder.named(cacheDirectory, limit: cacheLimit) : nil)
    }

    /// The shard record with row id `id`.
    public func shard(_ id: Int64) -> ShardRecord? { shards[id] }

    /// The path a stored shard is opened at.
    public func openPath(of shard: ShardRecord) -> String {
        Paths.resolveStoredShardPath(shard.path, indexDirectory: indexDirectory)
    }

    /// The open, checked file of shard `id`.
    ///
    /// - Throws: ``ShardChangedError`` when the shard's size or mtime differ from the index, or it
    ///   is missing; `IOError` when it cannot be opened.
    public func file(forShard id: Int64) throws -> ReadOnlyFile {
        if let f = files.withLock({ $0[id] }) { return f }
        guard let record = shards[id] else {
            throw ShardChangedError(
                path: "shard #\(id)", detail: "the index names a shard it does not list", indexPath: indexPath)
        }
        let file = try ShardCheck.open(ReadOnlyFile.self, record, at: openPath(of: record), indexPath: indexPath)
        return files.withLock { open in
            if let f = open[id] { return f }
            open[id] = file
            return file
        }
    }

    /// The exact bytes of `member` of the sample with key `key`, after validating its index row
    /// (``MemberLocation/defect(shardSize:)``) and checking its own tar header, read in the same
    /// `pread` as the data, against the row.
    ///
    /// ```swift
    /// let record = try index.sample(forKey: SampleKey("000001"))
    /// let jpeg = try reader.bytes(of: record.member("jpg")!, key: record.key, sample: record.id)
    /// ```
    ///
    /// - Parameter sample: the sample's row id, for errors.
    /// - Throws: ``IndexRowError`` (a damaged row), ``MemberHeaderError`` (the header does not
    ///   match: the shard or the index changed), ``ShardChangedError``, `IOError`.
    /// - Complexity: one `pread` of `512 + length` bytes.
    public func bytes(of member: MemberRecord, key: SampleKey, sample: Int64? = nil) throws -> [UInt8] {
        let location = member.location
        if let defect = location.defect(shardSize: shards[location.shardID]?.tarSize) {
            throw IndexRowError(indexPath: indexPath, sample: sample, key: key, ext: member.ext, defect: defect)
        }
        let header = MemberHeaderCheck.blockSize
        let count = header + Int(location.length)
        let bytes: [UInt8]
        let shardPath: String
        if let remote, let n = numbers[location.shardID], remote.isRemote(n), !remote.isCompressed(n) {
            // One range request for the header and the data, sent with the recorded ETag (or a
            // read of the shard's copy in the cache folder).
            var buffer = [UInt8](repeating: 0, count: count)
            let got = try buffer.withUnsafeMutableBytes {
                try remote.read(n, into: $0, at: location.dataOffset - Int64(header))!
            }
            shardPath = shards[location.shardID]!.path
            guard got == count else {
                throw ShardChangedError(
                    truncated: shardPath,
                    detail:
                        "the object ends at byte \(location.dataOffset - Int64(header) + Int64(got)) but \(count) bytes are needed from offset \(location.dataOffset - Int64(header))"
                )
            }
            bytes = buffer
        } else if let compressed, let n = numbers[location.shardID], compressed.isCompressed(n) {
            // A local file, or a remote object entered by range requests.
            let source: CompressedSource
            if let remote, let remoteSource = try remote.source(n) {
                source = remoteSource
            } else {
                source = CompressedSource(try file(forShard: location.shardID))
            }
            shardPath = source.path
            var buffer = [UInt8](repeating: 0, count: count)
            let read = {
                try buffer.withUnsafeMutableBytes {
                    try compressed.read(n, source: source, into: $0, at: location.dataOffset - Int64(header))!
                }
            }
            let got = try remote.map { try $0.watchingChanges(n, read) } ?? read()
            guard got == count else {
                throw CompressedShardError(
                    path: shards[location.shardID]!.path,
                    detail:
                        "the shard's tar ends at byte \(location.dataOffset - Int64(header) + Int64(got)) but \(count) bytes are needed from offset \(location.dataOffset - Int64(header))",
                    isSeekTable: false)
            }
            bytes = buffer
        } else {
            let file = try file(forShard: location.shardID)
            shardPath = file.path
            bytes = try file.read(count: count, at: location.dataOffset - Int64(header))
        }
        let row = PackedMember(
            offset: location.dataOffset, ext: 0, length: location.length, shard: 0,
            extended: location.headerOffset < location.dataOffset - Int64(header))
        try bytes.withUnsafeBytes { all in
            try key.bytes.withUnsafeBytes { keyBytes in
                try MemberHeaderError.check(
                    all.baseAddress!, row, length: Int(location.length), key: keyBytes, ext: member.ext,
                    shardPath: shardPath)
            }
        }
        return Array(bytes[header...])
    }
}

#if canImport(Glibc)
    import Glibc
#endif

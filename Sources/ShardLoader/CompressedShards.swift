import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardRemote
import Synchronization

/// A dataset's compressed shards and how their tar bytes are read.
///
/// - A shard with a seek table (gzip seek points; zstd with several frames, xz with several
///   blocks) is read through a ``SeekableReader``: each read decompresses from the nearest point
///   before it, or continues where an earlier read stopped.
/// - A shard that cannot be entered in the middle (one zstd frame, one xz block, bzip2) is
///   decompressed whole, once, into a ``WholeShardCache`` entry, and read from there.
///
/// Member offsets are offsets into the uncompressed tar, so ``FileSource`` and ``Preload`` read a
/// compressed shard as they read a plain one, through ``read(_:file:into:at:)``.
///
/// Safe to share between threads. A shard's seek table is decoded and validated (CRC-32C, every
/// offset against the shard's sizes) on its first read.
final class CompressedShards: Sendable {
    /// The shards, by shard number (the dataset's numbering); nil for a plain shard.
    let infos: [Shard?]
    let cache: WholeShardCache

    /// One compressed shard: its record, where it was opened (a path, or a remote shard's URL),
    /// and its seek table as stored.
    struct Shard: Sendable {
        let record: ShardRecord
        let format: CompressionFormat
        let path: String
        let table: StoredSeekTable?
        let indexPath: String

        /// Whether the shard is read through its seek table (else whole, through the cache): the
        /// index stores a point count of 0 for a shard that cannot be entered in the middle.
        var isSeekable: Bool { (table?.pointCount ?? 0) > 0 }
    }

    /// The seekable shards' readers, made on first use.
    private let readers = Mutex<[Int: SeekableReader]>([:])
    /// What the seekable readers decoded of each seek span, for reads that come back to it (a
    /// locality-aware order); shared by all the readers, bounded by its capacity.
    let spans: DecodedSpans
    /// While a front-to-back pass runs (``sequentialPass(_:)``), compressed shards are read
    /// through one forward decompression each, running a few MiB ahead of the pass on a thread of
    /// its own (``ReadAheadReader``), instead of a whole copy or seek points: no shard-sized
    /// buffer, each byte decompressed once, and the decompression overlaps the pass's own work.
    /// A read behind a stream goes to the seek points (or the whole copy) as outside a pass.
    private let passes = Mutex(0)
    private let streams = Mutex(Streams())

    /// The forward decompressions by shard number, and the shard numbers oldest first.
    private struct Streams {
        var shards: [Int: ForwardStream] = [:]
        var order: [Int] = []

        /// Adds shard `n`'s stream, dropping the oldest beyond ``CompressedShards/streamLimit`` (a
        /// pass goes shard by shard: those are done with); returns the stream.
        mutating func add(_ n: Int, _ stream: ForwardStream) -> ForwardStream {
            shards[n] = stream
            order.append(n)
            while order.count > CompressedShards.streamLimit { shards[order.removeFirst()] = nil }
            return stream
        }
    }

    /// The compressed shards among `records` (opened at `paths`; a remote one is named by its
    /// URL), with their stored seek tables; nil when no used shard is compressed.
    ///
    /// - Throws: ``DatasetError`` for a shard whose recorded compression this build cannot read,
    ///   or whose uncompressed size is missing.
    static func make(
        records: [ShardRecord], paths: [String], used: [Bool], tables: [Int64: StoredSeekTable], indexPath: String,
        cacheCapacity: Int64, cacheFolder: ShardCacheFolder? = nil, streamOnly: Bool = false,
        spanCapacity: Int = DecodedSpans.defaultCapacity
    ) throws -> CompressedShards? {
        guard records.indices.contains(where: { used[$0] && records[$0].isCompressed }) else { return nil }
        var infos: [Shard?] = []
        for (n, r) in records.enumerated() {
            guard r.isCompressed else {
                infos.append(nil)
                continue
            }
            guard let format = CompressionFormat(name: r.compression), format != .none else {
                throw DatasetError(
                    .corrupt,
                    "the index records shard '\(MessageText.escaped(r.path))' as '\(MessageText.escaped(r.compression))'-compressed, which this build cannot read; ingest it again with this version"
                )
            }
            guard let size = r.uncompressedSize, size >= 0 else {
                throw DatasetError(
                    .corrupt,
                    "the index records shard '\(MessageText.escaped(r.path))' as \(format.name)-compressed but not its uncompressed size; ingest it again into a new index"
                )
            }
            let path = RemoteLocation.hasRemoteScheme(r.path) ? r.path : paths[n]
            infos.append(Shard(record: r, format: format, path: path, table: tables[r.id], indexPath: indexPath))
        }
        return CompressedShards(
            infos: infos, cache: WholeShardCache(capacity: cacheCapacity, folder: cacheFolder),
            streamOnly: streamOnly, spans: DecodedSpans(capacity: spanCapacity))
    }

    /// Whether shards that cannot be entered in the middle are always read by decompressing
    /// forward from their start (restarting when a read goes back), never whole into a cache: for
    /// a reader of a member or two (`shardstore get`), which must not allocate a whole shard.
    let streamOnly: Bool

    private init(infos: [Shard?], cache: WholeShardCache, streamOnly: Bool, spans: DecodedSpans) {
        self.infos = infos
        self.cache = cache
        self.streamOnly = streamOnly
        self.spans = spans
    }

    /// The same shards for a child process after `fork()`: nothing locked is shared (a parent's
    /// thread may have held a lock at the fork); readers and cache entries are made anew.
    func forChildProcess() -> CompressedShards {
        CompressedShards(
            infos: infos, cache: WholeShardCache(capacity: cache.capacity, folder: cache.folder),
            streamOnly: streamOnly, spans: DecodedSpans(capacity: spans.capacity))
    }

    /// Whether shard `n` is compressed.
    @inline(__always)
    func isCompressed(_ n: Int) -> Bool { infos[n] != nil }

    /// Reads up to `buffer.count` tar bytes of compressed shard `n` at `offset` from `source` (its
    /// file, or its remote object) (fewer only at the end of its tar); nil when shard `n` is not
    /// compressed (read the file itself).
    ///
    /// In a pass, the first read of a shard also starts decompressing the next shard (`sources(n + 1)`
    /// opens it), so that the pass does not wait at the boundary.
    ///
    /// - Throws: ``CompressedShardError`` when the data cannot be decompressed or its seek table is
    ///   damaged.
    func read(
        _ n: Int, source: CompressedSource, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64,
        sources: ((Int) throws -> CompressedSource)? = nil
    ) throws -> Int? {
        guard let shard = infos[n] else { return nil }
        let passing = passes.withLock { $0 > 0 }
        if passing || (streamOnly && !shard.isSeekable) {
            let (stream, isNew) = streams.withLock { streams in
                if let stream = streams.shards[n] { return (stream, false) }
                return (streams.add(n, ForwardStream(shard: shard, source: source, readsAhead: passing)), true)
            }
            if isNew, passing, let sources, n + 1 < infos.count, let next = infos[n + 1],
                let nextSource = try? sources(n + 1)
            {
                streams.withLock { streams in
                    if streams.shards[n + 1] == nil {
                        _ = streams.add(
                            n + 1, ForwardStream(shard: next, source: nextSource, readsAhead: true, starts: true))
                    }
                }
            }
            if let got = try stream.read(into: buffer, at: offset, restartAnywhere: streamOnly && !shard.isSeekable) {
                return got
            }
        }
        if shard.isSeekable {
            let reader = try seekableReader(n, shard, source)
            do { return try reader.read(into: buffer, at: offset) } catch {
                throw CompressedShardError(shard: shard, error)
            }
        }
        let whole = try cache.shard(n, shard, source)
        return try whole.copy(into: buffer, at: offset)
    }

    /// The most forward decompressions kept at once (each holds a few MiB).
    static let streamLimit = 4

    /// Tells the shards a front-to-back pass starts (`true`) or ends (`false`); the last pass to
    /// end drops the forward decompressions.
    func sequentialPass(_ starting: Bool) {
        let running = passes.withLock { count in
            count = max(0, count + (starting ? 1 : -1))
            return count
        }
        if running == 0 { streams.withLock { $0 = Streams() } }
    }

    private func seekableReader(_ n: Int, _ shard: Shard, _ source: CompressedSource) throws -> SeekableReader {
        try readers.withLock { readers in
            if let reader = readers[n] { return reader }
            let table = shard.table!
            let decoded: SeekTable
            do {
                decoded = try table.data.withUnsafeBytes {
                    try SeekTable(
                        decoding: $0, format: shard.format, compressedSize: shard.record.size,
                        uncompressedSize: shard.record.uncompressedSize!, path: shard.path)
                }
            } catch { throw CompressedShardError(shard: shard, error) }
            guard decoded.isSeekable else {
                throw CompressedShardError(
                    path: shard.record.path,
                    detail:
                        "the index counts \(table.pointCount) seek points for shard '\(MessageText.escaped(shard.record.path))', but its seek table cannot enter it",
                    isSeekTable: true)
            }
            let reader = SeekableReader(source: source, info: CompressedShardInfo(seekTable: decoded), spans: spans)
            readers[n] = reader
            return reader
        }
    }
}

/// One front-to-back decompression of a compressed shard, for a sequential pass (on a thread of
/// its own, ahead of the pass: `readsAhead`) or for `shardstore get` (in the reading thread): it
/// serves reads at or after what it still holds, decompressing forward. A read behind it (the
/// pass went back, or readers interleave) restarts it from the shard's start when the read is
/// near there, else is left to the seek points or the whole-shard cache.
final class ForwardStream: @unchecked Sendable {
    private let shard: CompressedShards.Shard
    private let source: CompressedSource
    private let readsAhead: Bool
    /// Guards ``reader``.
    private let lock = Monitor()
    private var reader: Reader?

    /// The decompression: in the reading thread, or ahead of it.
    private enum Reader {
        case inline(DecompressingReader)
        case ahead(ReadAheadReader)

        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
            switch self {
            case .inline(let reader): return try reader.read(into: buffer, at: offset)
            case .ahead(let reader): return try reader.read(into: buffer, at: offset)
            }
        }
    }

    /// Reads this close to the start begin a new decompression rather than a whole copy.
    static let restartLimit: Int64 = 1 << 20

    /// A stream of `shard`; with `starts` (and `readsAhead`), its decompression starts now rather
    /// than at the first read (a failure to start is left to that read).
    init(shard: CompressedShards.Shard, source: CompressedSource, readsAhead: Bool, starts: Bool = false) {
        self.shard = shard
        self.source = source
        self.readsAhead = readsAhead
        if starts && readsAhead { reader = try? makeReader() }
    }

    private func makeReader() throws(DecompressionError) -> Reader {
        // Smaller buffers than an ingest's: a pass may hold a few streams.
        readsAhead
            ? .ahead(try ReadAheadReader(source: source, format: shard.format, chunkSize: 2 << 20, depth: 3))
            : .inline(try DecompressingReader(source: source, format: shard.format, bufferSize: 1 << 20))
    }

    /// Up to `buffer.count` bytes at `offset` (fewer only at the end of the tar), or nil when
    /// `offset` lies behind the decompression and too far from the start to restart it (with
    /// `restartAnywhere`, it restarts from the shard's start wherever `offset` is).
    ///
    /// - Throws: ``CompressedShardError`` when the data does not decompress.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, restartAnywhere: Bool = false) throws
        -> Int?
    {
        try lock.withLock { () throws -> Int? in
            do {
                if let current = reader {
                    do { return try current.read(into: buffer, at: offset) } catch let error as DecompressionError {
                        guard case .behindWindow = error.kind else { throw error }
                    }
                }
                guard reader == nil || restartAnywhere || offset < Self.restartLimit else { return nil }
                let fresh = try makeReader()
                reader = fresh
                return try fresh.read(into: buffer, at: offset)
            } catch let error as DecompressionError {
                reader = nil
                throw CompressedShardError(shard: shard, error)
            }
        }
    }
}

/// A compressed shard that could not be read: its data is damaged, or its seek table in the index is.
public struct CompressedShardError: Error, Sendable, CustomStringConvertible {
    /// The shard as the index stores it.
    public let path: String
    /// What the decompressor said, naming the compressed byte offset.
    public let detail: String
    /// Whether the index's seek table for the shard failed its checks (rather than the shard's data).
    public let isSeekTable: Bool

    /// Whether ``detail`` already says what to do (a decompressor's message does).
    private let saysWhatToDo: Bool

    init(shard: CompressedShards.Shard, _ error: any Error) {
        path = shard.record.path
        if let e = error as? DecompressionError {
            // The decompressor's line, naming the shard as the index stores it.
            detail =
                "\(DecompressionError(format: e.format, path: "shard '\(MessageText.escaped(path))'", compressedOffset: e.compressedOffset, kind: e.kind))"
            if case .badSeekTable = e.kind { isSeekTable = true } else { isSeekTable = false }
            saysWhatToDo = true
        } else {
            detail = "\(error)"
            isSeekTable = false
            saysWhatToDo = false
        }
    }

    init(path: String, detail: String, isSeekTable: Bool) {
        self.path = path
        self.detail = detail
        self.isSeekTable = isSeekTable
        saysWhatToDo = false
    }

    public var description: String {
        if saysWhatToDo { return detail }
        return isSeekTable
            ? "\(detail); the index's seek points for shard '\(MessageText.escaped(path))' are damaged: ingest the shard again into a new index"
            : "shard '\(MessageText.escaped(path))': \(detail); the shard changed or is damaged since ingest: run `shardstore verify` and ingest it again"
    }
}

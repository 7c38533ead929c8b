import ShardCompression
import ShardCore
import ShardIO
import ShardIndex

/// The members of one sample to read: their rows (shard number, data offset, extension number),
/// lengths, and what their headers are checked against. Views, valid during one call.
struct MemberReads {
    /// Each member's row, sorted by shard and offset.
    let rows: UnsafeBufferPointer<PackedMember>
    /// Each member's length in bytes.
    let lengths: UnsafeBufferPointer<Int>
    /// The sample's key bytes, for header checks and messages.
    let key: UnsafeRawBufferPointer
    /// The extension names the rows' numbers refer to.
    let names: [String]
}

/// Where a dataset's member bytes come from: one conformer per way of reading shards (the
/// preload, mapped shards, `pread`); compressed and remote shards are further conformers, not new
/// code paths in ``Dataset``.
///
/// A source points at each member's bytes and returns the object that keeps them valid: the
/// preload's arenas, the shard's mapping, or a buffer of its own. ``Dataset/withSample(at:_:)``
/// holds it for its closure; a ``SampleLease`` holds it until released, which is how views
/// outlive a closure (the C ABI's leases, Python's memoryviews).
///
/// Every source checks each member's own tar header against the index before handing out its
/// bytes (the preload checks once, when it reads them), unless header checks are off.
protocol ByteSource: Sendable {
    /// Points `slots[i]` at the first byte of member `i` of `reads` and returns what keeps those
    /// bytes valid (nil: the dataset itself, or `window` until its next use). `window` is a
    /// read-ahead buffer for sequential passes, used by sources that copy (nil: none).
    ///
    /// - Throws: ``MemberHeaderError`` when a header does not match the index; ``IndexRowError``
    ///   for an offset that leaves no room for a header; `IOError` or ``ShardChangedError`` when a
    ///   shard cannot be read or is shorter than the index says.
    /// - Complexity: O(members) plus reading their bytes (sources that copy).
    func locate(_ reads: MemberReads, window: ReadWindow?, into slots: UnsafeMutableBufferPointer<UnsafeRawPointer?>)
        throws -> AnyObject?

    /// A source for a child process after `fork()`: shares what is plain memory or a descriptor,
    /// with new locks (a lock held by a parent's thread at the fork would never be released).
    func forChildProcess() -> any ByteSource

    /// Tells the source a front-to-back pass starts (`true`) or ends (`false`).
    func sequentialPass(_ starting: Bool)

    /// The remote shards the source reads by range requests (nil: none).
    var remoteShards: RemoteShards? { get }
}

extension ByteSource {
    func sequentialPass(_ starting: Bool) {}

    var remoteShards: RemoteShards? { nil }
}

/// What is checked when a source reads a member: whether headers are checked at all, and the index
/// path for messages.
struct HeaderPolicy: Sendable {
    let verifies: Bool
    let indexPath: String

    /// The bytes read before each member's data: its header block when headers are checked.
    var headerBytes: Int { verifies ? MemberHeaderCheck.blockSize : 0 }

    /// The error for a member whose data offset leaves no room for its header (a damaged location
    /// file slot: table and statement rows are validated when loaded).
    func noRoomForHeader(_ row: PackedMember, _ reads: MemberReads) -> IndexRowError {
        IndexRowError(
            indexPath: indexPath, sample: nil, key: SampleKey(bytes: reads.key), ext: reads.names[row.ext],
            defect: MemberLocation.Defect(
                field: "data_offset", detail: "\(row.offset) is not a positive multiple of 512"))
    }

    /// Checks the header block right before each `slots[i]` (read with the member).
    @inline(__always)
    func check(_ reads: MemberReads, _ slots: UnsafeMutableBufferPointer<UnsafeRawPointer?>, paths: [String]) throws {
        guard verifies else { return }
        for i in 0..<reads.rows.count {
            let row = reads.rows[i]
            try MemberHeaderError.check(
                slots[i]! - MemberHeaderCheck.blockSize, row, length: reads.lengths[i], key: reads.key,
                ext: reads.names[row.ext], shardPath: paths[Int(row.shard)])
        }
    }
}

/// The `memory` strategy's source: the selection's bytes read into RAM at open (``Preload``),
/// each member's header checked then. Views point into the arenas, which a lease keeps alive.
struct PreloadedSource: ByteSource {
    let arenas: Arenas

    func locate(_ reads: MemberReads, window: ReadWindow?, into slots: UnsafeMutableBufferPointer<UnsafeRawPointer?>)
        throws -> AnyObject?
    {
        for i in 0..<reads.rows.count {
            slots[i] = arenas.pointer(shard: Int(reads.rows[i].shard), offset: reads.rows[i].offset)
        }
        return arenas
    }

    func forChildProcess() -> any ByteSource { self }
}

/// The `mmap` strategy's source: shards mapped read-only; views point into the mappings, which a
/// lease keeps alive (a mapping evicted from the cache is unmapped only when its last holder lets go).
struct MappedSource: ByteSource {
    let files: ShardFiles<MappedFile>
    let policy: HeaderPolicy

    func locate(_ reads: MemberReads, window: ReadWindow?, into slots: UnsafeMutableBufferPointer<UnsafeRawPointer?>)
        throws -> AnyObject?
    {
        let header = policy.headerBytes
        var keeper: AnyObject?
        var others: [MappedFile] = []
        var i = 0
        while i < reads.rows.count {
            let shard = Int(reads.rows[i].shard)
            let file = try files.file(shard)
            if keeper == nil { keeper = file } else { others.append(file) }
            // The pointer outlives this closure: `file` (returned as the keeper) keeps the mapping.
            let map = file.withMapping { $0 }
            while i < reads.rows.count, Int(reads.rows[i].shard) == shard {
                let row = reads.rows[i]
                let length = reads.lengths[i]
                let offset = Int(row.offset)
                guard offset >= header else { throw policy.noRoomForHeader(row, reads) }
                guard offset <= map.count, length <= map.count - offset else {
                    throw ShardCheck.shortRead(files.paths[shard], size: Int64(map.count), offset: row.offset, length)
                }
                let data = map.baseAddress! + offset
                if header > 0 {
                    try MemberHeaderError.check(
                        data - header, row, length: length, key: reads.key, ext: reads.names[row.ext],
                        shardPath: files.paths[shard])
                }
                slots[i] = UnsafeRawPointer(data)
                i += 1
            }
        }
        // A sample merged from several shards (rare) keeps every mapping it points into.
        if !others.isEmpty { return Keepers(keeper: keeper, others: others) }
        return keeper
    }

    func forChildProcess() -> any ByteSource { MappedSource(files: files.forChildProcess(), policy: policy) }

    func sequentialPass(_ starting: Bool) {
        for f in files.openNow { f.advise(starting ? .sequential : .normal) }
    }

    /// Several mappings held together.
    private final class Keepers {
        let keeper: AnyObject?
        let others: [MappedFile]
        init(keeper: AnyObject?, others: [MappedFile]) {
            self.keeper = keeper
            self.others = others
        }
    }
}

/// The `mmap` strategy's source when some shards are compressed or remote: those cannot be
/// mapped, so their samples are read like `pread` reads them (through their decompressors, or by
/// range requests), the others from the mappings.
struct SplitSource: ByteSource {
    let mapped: MappedSource
    let file: FileSource

    func locate(_ reads: MemberReads, window: ReadWindow?, into slots: UnsafeMutableBufferPointer<UnsafeRawPointer?>)
        throws -> AnyObject?
    {
        for row in reads.rows
        where file.compressed?.isCompressed(Int(row.shard)) == true || file.remote?.isRemote(Int(row.shard)) == true {
            return try file.locate(reads, window: window, into: slots)
        }
        return try mapped.locate(reads, window: window, into: slots)
    }

    func forChildProcess() -> any ByteSource {
        SplitSource(
            mapped: MappedSource(files: mapped.files.forChildProcess(), policy: mapped.policy),
            file: file.childCopy())
    }

    func sequentialPass(_ starting: Bool) {
        mapped.sequentialPass(starting)
        file.sequentialPass(starting)
    }

    var remoteShards: RemoteShards? { file.remote }
}

/// The `pread` strategy's source: each sample is read, with its members' header blocks, into a
/// buffer of its own (one `pread` when its members lie close together in one shard), or, in a
/// sequential pass, served from a read-ahead ``ReadWindow``.
struct FileSource: ByteSource {
    let files: ShardFiles<ReadOnlyFile>
    let policy: HeaderPolicy
    /// The dataset's compressed shards, read through their decompressors; nil when none is used.
    var compressed: CompressedShards? = nil
    /// The dataset's remote shards, read by range requests; nil when none is used.
    var remote: RemoteShards? = nil

    /// The one read that covers a sample's members with their headers (`header` bytes before
    /// each), when they lie in one shard with small gaps (tar headers and padding) between them;
    /// nil when they are read one by one (or a member leaves no room for its header).
    static func coalescedRead(
        _ rows: UnsafeBufferPointer<PackedMember>, _ lengths: UnsafeBufferPointer<Int>, header: Int
    ) -> (shard: Int, low: Int64, span: Int)? {
        guard !rows.isEmpty else { return nil }
        var total = 0
        var low = Int64.max
        var high = Int64.min
        for i in 0..<rows.count {
            guard rows[i].shard == rows[0].shard, rows[i].offset >= Int64(header) else { return nil }
            total += header + lengths[i]
            low = min(low, rows[i].offset - Int64(header))
            high = max(high, rows[i].offset + Int64(lengths[i]))
        }
        let span = Int(high - low)
        return span - total <= max(64 << 10, total) ? (Int(rows[0].shard), low, span) : nil
    }

    func locate(_ reads: MemberReads, window: ReadWindow?, into slots: UnsafeMutableBufferPointer<UnsafeRawPointer?>)
        throws -> AnyObject?
    {
        let rows = reads.rows
        let lengths = reads.lengths
        guard !rows.isEmpty else { return nil }
        let header = policy.headerBytes
        var total = 0
        for i in 0..<rows.count {
            guard rows[i].offset >= Int64(header) else { throw policy.noRoomForHeader(rows[i], reads) }
            total += header + lengths[i]
        }
        // One read over the span when the gaps (tar headers and padding) are small.
        let coalesced = Self.coalescedRead(rows, lengths, header: header)
        let coalesce = coalesced != nil
        let low = coalesced?.low ?? 0
        let span = coalesced?.span ?? 0
        // Fetched already, with the other samples of a batch (remote shards).
        if let coalesced, let fetched = window?.fetched,
            let base = fetched.bytes(shard: coalesced.shard, from: low, count: span)
        {
            for i in 0..<rows.count { slots[i] = UnsafeRawPointer(base + Int(rows[i].offset - low)) }
            try policy.check(reads, slots, paths: files.paths)
            return fetched
        }
        if coalesce, let window,
            let base = try window.bytes(
                shard: Int(rows[0].shard), from: low, count: span,
                { buffer, offset in
                    let n = try readAll(Int(rows[0].shard), into: buffer, at: offset)
                    if n < span {
                        throw ShardCheck.shortRead(
                            files.paths[Int(rows[0].shard)], size: offset + Int64(n), offset: offset, span)
                    }
                    return n
                })
        {
            for i in 0..<rows.count { slots[i] = UnsafeRawPointer(base + Int(rows[i].offset - low)) }
            try policy.check(reads, slots, paths: files.paths)
            return nil
        }
        let buffer = ReadBuffer(byteCount: coalesce ? span : total)
        let start = buffer.bytes.baseAddress!
        if coalesce {
            try read(Int(rows[0].shard), into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<span]), at: low)
            for i in 0..<rows.count { slots[i] = UnsafeRawPointer(start + Int(rows[i].offset - low)) }
        } else {
            var at = 0
            for i in 0..<rows.count {
                let count = header + lengths[i]
                try read(
                    Int(rows[i].shard), into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[at..<(at + count)]),
                    at: rows[i].offset - Int64(header))
                slots[i] = UnsafeRawPointer(start + at + header)
                at += count
            }
        }
        try policy.check(reads, slots, paths: files.paths)
        return buffer
    }

    func forChildProcess() -> any ByteSource { childCopy() }

    /// This source for a child process after `fork()` (see ``ByteSource/forChildProcess()``).
    func childCopy() -> FileSource {
        FileSource(
            files: files.forChildProcess(), policy: policy, compressed: compressed?.forChildProcess(),
            remote: remote?.forChildProcess())
    }

    func sequentialPass(_ starting: Bool) { compressed?.sequentialPass(starting) }

    var remoteShards: RemoteShards? { remote }

    /// Reads up to `buffer.count` tar bytes of shard `shard` at `offset`: from the file, through
    /// the decompressor of a compressed shard (local or remote), or by one range request for a
    /// plain remote one. Fewer only at the end of the tar.
    @inline(__always)
    private func readAll(_ shard: Int, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        if let remote, remote.isRemote(shard) {
            if let compressed, let source = try remote.source(shard) {
                return try remote.watchingChanges(shard) {
                    try compressed.read(shard, source: source, into: buffer, at: offset, sources: source(of:))!
                }
            }
            return try remote.read(shard, into: buffer, at: offset)!
        }
        let file = try files.file(shard)
        if let compressed,
            let n = try compressed.read(
                shard, source: CompressedSource(file), into: buffer, at: offset, sources: source(of:))
        {
            return n
        }
        return try file.readAll(into: buffer, at: offset)
    }

    /// Shard `n`'s compressed bytes: its remote object, or its file.
    private func source(of n: Int) throws -> CompressedSource {
        if let source = try remote?.source(n) { return source }
        return CompressedSource(try files.file(n))
    }

    private func read(_ shard: Int, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws {
        guard !buffer.isEmpty else { return }
        let n = try readAll(shard, into: buffer, at: offset)
        if n < buffer.count {
            throw ShardCheck.shortRead(files.paths[shard], size: offset + Int64(n), offset: offset, buffer.count)
        }
    }
}

/// A buffer of bytes read from shards, freed when the last holder (a closure's caller, a lease)
/// lets go.
final class ReadBuffer {
    let bytes: UnsafeMutableRawBufferPointer

    init(byteCount: Int) { bytes = .allocate(byteCount: max(byteCount, 1), alignment: 64) }

    deinit { bytes.deallocate() }
}

import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardRemote
import Synchronization

/// A dataset's remote shards (in S3-compatible storage or behind an HTTP(S) URL) and the client
/// that reads them: each read is one range request, sent with `If-Match` and the ETag recorded at
/// ingest, so that an object replaced since is refused (HTTP 412) rather than read.
///
/// ``FileSource`` reads a remote shard as it reads a local one, through ``read(_:into:at:)``:
/// one request for a sample's adjacent members with their headers, whose checks then run as for
/// any shard. A compressed remote shard is read through ``CompressedShards`` as a local one is,
/// from ``source(_:)``: its seek points, frames or blocks are entered by range requests of a MiB
/// or more, and one that cannot be entered in the middle is decompressed whole, once.
///
/// With a ``ShardCacheFolder``, a remote shard is instead downloaded whole on its first read (one
/// streaming GET sent with `If-Match` and the recorded ETag, written through ``AtomicFile``) into
/// a copy named after its URL, size, ETag and Last-Modified, and read from there with `pread`, as
/// a local shard is; later datasets (another epoch, another process) find the copy and send no
/// request. A shard larger than the folder's limit is still read by range requests.
///
/// Safe to share between threads (the client keeps a connection per concurrent reader).
final class RemoteShards: Sendable {
    /// One remote shard: its record, where it lives, and its bytes for a decompressor.
    struct Shard: Sendable {
        let record: ShardRecord
        let location: RemoteLocation
        /// The object's range reader, for a compressed shard; nil for a plain one.
        let compressed: WatchedObjectBytes?
    }

    /// The shards, by shard number (the dataset's numbering); nil for a local shard.
    let infos: [Shard?]
    let client: RemoteClient
    /// Where whole copies go, when a cache folder is named.
    let folder: ShardCacheFolder?
    /// The copies opened so far, by shard number (with a folder).
    private let copies: WholeShardCache

    /// The remote shards among `records` and a client for them (from `configuration`, else from
    /// the environment and the AWS files, as the AWS tools read them); nil when no used shard is
    /// remote. With `folder`, shards up to its limit are read from whole copies there.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for a stored location that does not parse,
    ///   or a configuration that cannot be resolved (a named profile that does not exist).
    static func make(
        records: [ShardRecord], used: [Bool], configuration: RemoteConfiguration?, indexPath: String,
        folder: ShardCacheFolder? = nil
    ) throws -> RemoteShards? {
        guard records.indices.contains(where: { used[$0] && RemoteLocation.hasRemoteScheme(records[$0].path) }) else {
            return nil
        }
        var infos: [Shard?] = []
        for r in records {
            guard RemoteLocation.hasRemoteScheme(r.path) else {
                infos.append(nil)
                continue
            }
            let location: RemoteLocation
            do { location = try RemoteLocation(parsing: r.path) } catch {
                throw DatasetError(
                    .corrupt,
                    "the index records shard '\(MessageText.escaped(r.path))' at a location that cannot be used (\(error)); ingest it again"
                )
            }
            infos.append(Shard(record: r, location: location, compressed: nil))
        }
        let resolved: RemoteConfiguration
        if let configuration {
            resolved = configuration
        } else {
            do { resolved = try RemoteConfiguration.resolve() } catch {
                throw DatasetError(.invalidArgument, "\(error)")
            }
        }
        return RemoteShards(
            infos: infos, client: RemoteClient(configuration: resolved), indexPath: indexPath, folder: folder)
    }

    /// The compressed shards' range readers are made here, for `client` (a child process's own).
    private static func withReaders(_ infos: [Shard?], client: RemoteClient) -> [Shard?] {
        infos.map { shard in
            guard let shard else { return nil }
            guard shard.record.isCompressed else { return shard }
            let info = RemoteObjectInfo(
                location: shard.location, size: shard.record.size, etag: shard.record.etag)
            return Shard(
                record: shard.record, location: shard.location,
                compressed: WatchedObjectBytes(RemoteObjectBytes(client: client, info: info)))
        }
    }

    private let indexPath: String

    private init(infos: [Shard?], client: RemoteClient, indexPath: String, folder: ShardCacheFolder?) {
        self.infos = Self.withReaders(infos, client: client)
        self.client = client
        self.indexPath = indexPath
        self.folder = folder
        copies = WholeShardCache(capacity: 0, folder: folder)
    }

    /// The same shards for a child process after `fork()`: a client without the parent's
    /// connections, and no copies open or being downloaded (the child opens the folder's copies
    /// again, and downloads what the parent had not finished).
    func forChildProcess() -> RemoteShards {
        RemoteShards(infos: infos, client: client.forChildProcess(), indexPath: indexPath, folder: folder)
    }

    /// Whether remote shard `n` is read from a whole copy in the cache folder (it fits the limit).
    func isCached(_ n: Int) -> Bool {
        guard let folder, let shard = infos[n] else { return false }
        return shard.record.size <= folder.limit
    }

    /// Whether shard `n` is remote.
    @inline(__always)
    func isRemote(_ n: Int) -> Bool { infos[n] != nil }

    /// How many compressed bytes a decompressor asks for per range request, at least.
    static let compressedChunk = 1 << 20

    /// Whether shard `n` is a compressed remote shard (read through ``source(_:)``).
    @inline(__always)
    func isCompressed(_ n: Int) -> Bool { infos[n]?.compressed != nil }

    /// Shard `n`'s compressed bytes for ``CompressedShards``: its copy in the cache folder
    /// (downloaded first when missing) when it fits the folder's limit, else range requests sent
    /// with `If-Match`; nil when shard `n` is not a compressed remote shard.
    ///
    /// - Throws: as ``read(_:into:at:)`` does when the copy is downloaded.
    func source(_ n: Int) throws -> CompressedSource? {
        guard let shard = infos[n], let bytes = shard.compressed else { return nil }
        if let folder, shard.record.size <= folder.limit {
            let copy = try copies.copy(n) { WholeShard(file: try download(shard, into: folder)) }
            return CompressedSource(copy.file!, path: shard.record.path)
        }
        return CompressedSource(bytes, path: shard.record.path, chunkSize: Self.compressedChunk)
    }

    /// Runs `body`, a read of compressed remote shard `n` through ``source(_:)``; when it fails
    /// because the object was replaced since ingest, throws ``ShardChangedError`` instead of the
    /// decompressor's error (which carries the request's message only as text).
    func watchingChanges<T>(_ n: Int, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            guard let shard = infos[n], let bytes = shard.compressed, bytes.wasReplaced else { throw error }
            throw replaced(shard)
        }
    }

    private func replaced(_ shard: Shard) -> ShardChangedError {
        ShardChangedError(
            path: shard.record.path,
            detail: "its ETag is no longer \(shard.record.etag ?? "the one recorded"): the object was replaced",
            indexPath: indexPath)
    }

    /// The number of remote shards among the used ones.
    func count(used: [Bool]) -> Int { infos.indices.filter { used[$0] && infos[$0] != nil }.count }

    /// Reads up to `buffer.count` bytes of remote shard `n` at `offset` (fewer only at the end of
    /// the object): from its copy in the cache folder (downloaded first when missing), or with one
    /// range request; nil when shard `n` is not remote.
    ///
    /// - Throws: ``ShardChangedError`` when the object is no longer the one ingested (its ETag
    ///   or size changed); `RemoteError` when the request fails after its retries; `IOError` when
    ///   a copy cannot be written or read.
    func read(_ n: Int, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int? {
        guard let shard = infos[n] else { return nil }
        precondition(shard.compressed == nil, "a compressed remote shard is read through CompressedShards")
        let size = shard.record.size
        guard offset < size else { return 0 }
        let wanted = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(min(Int64(buffer.count), size - offset))])
        if let folder, size <= folder.limit {
            let copy = try copies.copy(n) { WholeShard(file: try download(shard, into: folder)) }
            return try copy.copy(into: wanted, at: offset)
        }
        do {
            return try client.read(shard.location, at: offset, into: wanted, ifMatch: shard.record.etag)
        } catch {
            throw changed(shard, error)
        }
    }

    /// The copy of `shard` in `folder`, downloaded first when missing: one streaming GET with
    /// `If-Match` and the recorded ETag (resumed from where it broke, with the same check), whose
    /// size (and, without an ETag, Last-Modified) must be the recorded ones.
    ///
    /// - Throws: ``ShardChangedError`` when the object was replaced; `RemoteError`; `IOError`.
    private func download(_ shard: Shard, into folder: ShardCacheFolder) throws -> ReadOnlyFile {
        let record = shard.record
        return try folder.copy(named: folder.remoteName(for: record), size: record.size) { out in
            let stream: RemoteStream
            do { stream = try client.openStream(shard.location, ifMatch: record.etag) } catch {
                throw changed(shard, error)
            }
            if stream.info.size != record.size {
                throw ShardChangedError(
                    path: record.path, detail: "size \(record.size) bytes at ingest, \(stream.info.size) now",
                    indexPath: indexPath)
            }
            if record.etag == nil, let recorded = record.lastModified, let now = stream.info.lastModifiedText,
                recorded != now
            {
                throw ShardChangedError(
                    path: record.path, detail: "Last-Modified was \(recorded) at ingest, \(now) now",
                    indexPath: indexPath)
            }
            let piece = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { piece.deallocate() }
            while true {
                let got: Int
                do { got = try stream.read(into: piece) } catch { throw changed(shard, error) }
                if got == 0 { break }
                try out.write(UnsafeRawBufferPointer(rebasing: piece[0..<got]))
            }
        }
    }

    /// `error` as a ``ShardChangedError`` when the server refused the recorded ETag (HTTP 412);
    /// otherwise `error` itself.
    private func changed(_ shard: Shard, _ error: any Error) -> any Error {
        guard (error as? RemoteError)?.isShardChanged == true else { return error }
        return replaced(shard)
    }
}

/// A remote object's range reader that remembers whether a read found the object replaced (HTTP
/// 412 to its `If-Match`), for errors that pass through a decompressor as text.
final class WatchedObjectBytes: RandomAccessBytes, Sendable {
    private let bytes: RemoteObjectBytes
    private let replaced = Atomic<Bool>(false)

    init(_ bytes: RemoteObjectBytes) { self.bytes = bytes }

    /// Whether a read found the object replaced since ingest.
    var wasReplaced: Bool { replaced.load(ordering: .relaxed) }

    var byteCount: Int64 { bytes.byteCount }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        do { return try bytes.read(into: buffer, at: offset) } catch {
            if let failure = error as? RemoteError, failure.isShardChanged { replaced.store(true, ordering: .relaxed) }
            throw error
        }
    }
}

/// Spans of remote shards fetched together: a batch's samples, one range request each, many in
/// flight at once, in one allocation. A sample read from here is kept alive by this object (a
/// lease of it holds the whole batch's bytes).
final class FetchedRanges: @unchecked Sendable {
    /// A span's shard and first byte.
    fileprivate struct Key: Hashable {
        let shard: Int
        let low: Int64
    }

    private let arena: UnsafeMutableRawBufferPointer
    /// Where each fetched span starts in the arena, and its length.
    private let spans: [Key: (at: Int, count: Int)]

    fileprivate init(arena: UnsafeMutableRawBufferPointer, spans: [(shard: Int, low: Int64, at: Int, count: Int)]) {
        self.arena = arena
        var table: [Key: (at: Int, count: Int)] = [:]
        for s in spans { table[Key(shard: s.shard, low: s.low)] = (s.at, s.count) }
        self.spans = table
    }

    deinit { arena.deallocate() }

    /// The bytes of `shard` from `from`, when a span starting there with at least `count` bytes was
    /// fetched; nil otherwise (read it on its own).
    func bytes(shard: Int, from: Int64, count: Int) -> UnsafeRawPointer? {
        guard let span = spans[Key(shard: shard, low: from)], span.count >= count else { return nil }
        return UnsafeRawPointer(arena.baseAddress! + span.at)
    }
}

extension RemoteShards {
    /// The most bytes one batch fetches ahead; a batch asking for more reads the rest on its own.
    static let fetchLimit = 256 << 20

    /// Fetches `spans` of plain remote shards (neither compressed nor read from the cache folder)
    /// with up to `inFlight` range requests in flight, driven by the calling thread (libcurl's
    /// multi interface), each sent with `If-Match`; nil when none of them is such a shard. A span
    /// whose request fails is left out: its read then goes out on its own, with its retries, and
    /// reports what failed.
    ///
    /// - Complexity: one request per distinct span; memory for their bytes.
    func fetch(_ spans: [(shard: Int, low: Int64, span: Int)], inFlight: Int) -> FetchedRanges? {
        var wanted: [(shard: Int, low: Int64, at: Int, count: Int)] = []
        var seen = Set<FetchedRanges.Key>()
        var total = 0
        for s in spans {
            guard let shard = infos[s.shard], shard.compressed == nil, !isCached(s.shard), s.span > 0,
                s.low >= 0, s.low + Int64(s.span) <= shard.record.size, total + s.span <= Self.fetchLimit,
                seen.insert(FetchedRanges.Key(shard: s.shard, low: s.low)).inserted
            else { continue }
            wanted.append((s.shard, s.low, total, s.span))
            total += s.span
        }
        guard !wanted.isEmpty else { return nil }
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 64)
        let requests = wanted.map { w in
            RangeRequest(
                location: infos[w.shard]!.location, offset: w.low,
                buffer: UnsafeMutableRawBufferPointer(rebasing: arena[w.at..<(w.at + w.count)]),
                ifMatch: infos[w.shard]!.record.etag)
        }
        let results = client.readRanges(requests, maxInFlight: max(inFlight, 1))
        let fetched = wanted.indices.filter { (try? results[$0].get()) == wanted[$0].count }.map { wanted[$0] }
        return FetchedRanges(arena: arena, spans: fetched)
    }
}

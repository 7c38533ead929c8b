import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardLoader
import ShardRemote

/// Entries of a shard that are not sample members, by reason.
public struct SkipCounts: Sendable, Equatable {
    public var directories = 0
    public var symlinks = 0
    public var hardLinks = 0
    /// Character and block devices, FIFOs, volume labels and other typeflags.
    public var otherTypes = 0
    /// GNU sparse files (their stored bytes are not the file's contents).
    public var sparse = 0
    /// webdataset metadata names (`__meta__`, `__x__/...`).
    public var metadataNames = 0
    /// Regular files whose name does not match the key rule (`README`, `.hidden.txt`).
    public var noExtension = 0

    public init() {}

    /// All skipped entries.
    public var total: Int { directories + symlinks + hardLinks + otherTypes + sparse + metadataNames + noExtension }

    public static func += (a: inout SkipCounts, b: SkipCounts) {
        a.directories += b.directories
        a.symlinks += b.symlinks
        a.hardLinks += b.hardLinks
        a.otherTypes += b.otherTypes
        a.sparse += b.sparse
        a.metadataNames += b.metadataNames
        a.noExtension += b.noExtension
    }

    /// Non-zero counts with their labels, for summaries: `1 directory`, `2 symlinks`.
    public var nonZero: [String] {
        [
            (directories, "directory", "directories"), (symlinks, "symlink", "symlinks"),
            (hardLinks, "hard link", "hard links"), (otherTypes, "other entry type", "other entry types"),
            (sparse, "sparse file", "sparse files"),
            (metadataNames, "webdataset metadata name", "webdataset metadata names"),
            (noExtension, "name without extension", "names without extension"),
        ].filter { $0.0 > 0 }.map { "\($0.0) \($0.0 == 1 ? $0.1 : $0.2)" }
    }
}

/// One member found by a scan.
struct ScannedMember: Sendable {
    var key: SampleKey
    /// Index into ``ShardScan/extensions``.
    var ext: Int32
    var headerOffset: Int64
    var dataOffset: Int64
    var length: Int64
}

/// The result of scanning one shard's headers.
struct ShardScan: Sendable {
    var members: [ScannedMember] = []
    /// The shard's distinct extensions, in order of first appearance.
    var extensions: [String] = []
    var skipped = SkipCounts()
    /// The CRC-32C of each member's data, parallel to ``members``; empty when checksums were not
    /// asked for.
    var crc32c: [UInt32] = []
    /// A compressed shard's format, sizes and seek table; nil for a plain tar.
    var compression: CompressedShardInfo?
    /// A remote shard's object as the GET that read it described it (size, ETag, Last-Modified);
    /// nil for a local file.
    var remote: RemoteObjectInfo?
}

/// A stream (a decompressing reader, or a remote shard's GET) that keeps the error of its kind
/// behind a failed read, which the tar scanner reports only as text.
final class RecordingStream<Base: TarStream, Failure: Error>: TarStream {
    let stream: Base
    private(set) var failure: Failure?

    init(_ stream: Base) { self.stream = stream }

    var bytesRead: Int64 { stream.bytesRead }

    var byteCount: Int64 { stream.byteCount }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        do { return try stream.read(into: buffer, at: offset) } catch let error as Failure {
            failure = error
            throw error
        }
    }

    func forEachPiece(offset: Int64, count: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        do { try stream.forEachPiece(offset: offset, count: count, body) } catch let error as Failure {
            failure = error
            throw error
        }
    }
}

/// A compressed shard's decompressed stream, keeping the decompression error.
typealias DecompressionRecordingStream = RecordingStream<DecompressingReader, DecompressionError>

/// A scan stopped by its cancellation poll.
private struct Cancelled: Error {}

/// A member whose header or row does not fit the shard, found while checksumming it.
private struct Differs: Error {
    var offset: Int64
    var member: String
    var detail: String
}

/// `error` naming the shard as the index stores it (`shard 'a.tar.gz'`), as ingest's other
/// messages do.
private func named(_ error: DecompressionError, _ displayPath: String) -> DecompressionError {
    DecompressionError(
        format: error.format, path: "shard '\(displayPath)'", compressedOffset: error.compressedOffset, kind: error.kind
    )
}

enum ShardScanner {
    /// The shard at `path`, opened, and its compression (from its first bytes).
    ///
    /// - Throws: ``IngestError/unreadableShard(_:)``.
    private static func open(_ path: String) throws(IngestError) -> (ReadOnlyFile, CompressionFormat) {
        do {
            let file = try ReadOnlyFile(path: path)
            return (file, try detectCompression(file))
        } catch { throw .unreadableShard(error) }
    }

    /// Scans the headers of the shard at `path`; with `checksums`, reads the whole shard front to
    /// back instead (large reads into one buffer), computing each member's CRC-32C as its header
    /// is found.
    ///
    /// - Throws: ``IngestError`` naming the shard and offset.
    static func scan(
        path: String, displayPath: String, checksums: Bool = false, seekSpan: Int64 = SeekTable.defaultSpan,
        isCancelled: () -> Bool
    ) throws(IngestError) -> ShardScan {
        let (file, format) = try open(path)
        if format != .none {
            return try scanCompressed(
                CompressedSource(file), format: format, path: path, displayPath: displayPath, checksums: checksums,
                seekSpan: seekSpan, isCancelled: isCancelled)
        }
        // The scanner reads through one buffer: a small window for headers alone (the headers of
        // small members share one `pread`), or large reads that also serve the members' data for
        // their checksums, so a scan with checksums is one pass over the shard.
        let reader = SequentialReader(
            file: file, bufferSize: checksums ? SequentialReader.defaultBufferSize : SequentialReader.headerWindowSize)
        return try scan(reader, path: path, displayPath: displayPath, checksums: checksums, isCancelled: isCancelled)
    }

    /// One streaming pass over a compressed shard: the scanner reads headers from the
    /// decompressed stream, skipping member data by decompressing past it (checksummed on the way
    /// when asked for); the pass collects the seek table.
    ///
    /// - Throws: ``IngestError`` (`.decompressionFailed` naming the shard and compressed offset).
    private static func scanCompressed(
        _ source: CompressedSource, format: CompressionFormat, path: String, displayPath: String, checksums: Bool,
        seekSpan: Int64, isCancelled: () -> Bool
    ) throws(IngestError) -> ShardScan {
        let stream: DecompressionRecordingStream
        do {
            stream = DecompressionRecordingStream(
                try DecompressingReader(source: source, format: format, seekSpan: seekSpan))
        } catch { throw .decompressionFailed(named(error, displayPath)) }
        var result = try scan(
            stream, path: path, displayPath: displayPath, checksums: checksums, isCancelled: isCancelled)
        let info: CompressedShardInfo
        do { info = try stream.stream.finish() } catch { throw .decompressionFailed(named(error, displayPath)) }
        // A tar cut short inside a complete compressed stream: the scanner, which cannot know
        // the stream's size up front, saw its end where the next header should be.
        if let last = result.members.max(by: { $0.dataOffset + $0.length < $1.dataOffset + $1.length }),
            last.dataOffset + last.length > info.uncompressedSize
        {
            throw .corruptShard(
                path: displayPath,
                TarError(
                    .truncatedMember(needed: last.dataOffset + last.length, fileSize: info.uncompressedSize),
                    at: last.headerOffset))
        }
        result.compression = info
        return result
    }

    /// Scans the remote shard `object` as it arrives, with one GET (sent with `If-Match` and the
    /// ETag its listing or HEAD gave, so an object replaced meanwhile is refused), never stored
    /// locally; with `checksums`, each member's CRC-32C on the way. A compressed object is
    /// decompressed as it arrives, collecting its seek table as a local shard's scan does (an xz
    /// file's index, at its end, takes a range request or two).
    ///
    /// - Throws: ``IngestError`` (`.remoteFailed` when the request fails after its retries,
    ///   `.corruptShard` naming the URL and offset, `.decompressionFailed` naming the URL and the
    ///   compressed offset).
    static func scan(
        remote object: RemoteObjectInfo, client: RemoteClient, checksums: Bool,
        seekSpan: Int64 = SeekTable.defaultSpan, isCancelled: () -> Bool
    )
        throws(IngestError) -> ShardScan
    {
        let url = object.location.description
        let stream: RemoteStream
        do { stream = try client.openStream(object.location, ifMatch: object.etag) } catch {
            throw .remoteFailed(error)
        }
        let recording = RecordingStream<RemoteStream, RemoteError>(stream)
        // The compression from the first bytes (the stream keeps them for the scanner).
        let prefix = UnsafeMutableRawBufferPointer.allocate(byteCount: CompressionFormat.detectionBytes, alignment: 8)
        defer { prefix.deallocate() }
        let n: Int
        do { n = try recording.read(into: prefix, at: 0) } catch {
            throw .remoteFailed(
                recording.failure ?? RemoteError(.badResponse("\(error)"), url: url, operation: "stream"))
        }
        let format = CompressionFormat.detect(UnsafeRawBufferPointer(rebasing: prefix[0..<n]))
        if format != .none {
            let bytes = StreamedObjectBytes(stream: stream, client: client)
            var result: ShardScan
            do {
                result = try scanCompressed(
                    CompressedSource(bytes, path: url), format: format, path: url, displayPath: url,
                    checksums: checksums, seekSpan: seekSpan, isCancelled: isCancelled)
            } catch {
                // A request that failed, rather than the data: say so, as for a plain shard.
                if let failure = recording.failure ?? bytes.failure { throw .remoteFailed(failure) }
                throw error
            }
            result.remote = stream.info
            return result
        }
        var result: ShardScan
        do {
            result = try scan(recording, path: url, displayPath: url, checksums: checksums, isCancelled: isCancelled)
        } catch {
            if let failure = recording.failure { throw .remoteFailed(failure) }
            throw error
        }
        result.remote = stream.info
        return result
    }

    /// Scans the tar read through `reader` (the file, or its decompressed stream).
    private static func scan<S: TarStream>(
        _ reader: S, path: String, displayPath: String, checksums: Bool, isCancelled: () -> Bool
    ) throws(IngestError) -> ShardScan {
        let sequential = checksums ? reader : nil
        var scanner = TarScanner(reader)
        var result = ShardScan()
        var extensions: [[UInt8]: Int32] = [:]
        var n = 0
        while true {
            let entry: TarEntry?
            do { entry = try scanner.next() } catch {
                if let stream = reader as? DecompressionRecordingStream {
                    if let failure = stream.failure { throw .decompressionFailed(named(failure, displayPath)) }
                    // The scanner took the stream's size as unknown (Int64.max); by now the stream
                    // has ended, and its real end goes in the message.
                    if case .truncatedHeader = error.kind, stream.byteCount != .max {
                        throw .corruptShard(
                            path: displayPath,
                            TarError(.truncatedHeader(fileSize: stream.byteCount), at: error.offset))
                    }
                }
                if case .compressed(let c) = error.kind { throw .compressedShard(path: displayPath, openPath: path, c) }
                throw .corruptShard(path: displayPath, error)
            }
            guard let entry else { break }
            n += 1
            if n & 0xFFF == 0, isCancelled() { throw .cancelled }
            switch entry.kind {
            case .regular:
                switch WebDatasetName.classify(entry.name) {
                case .member(let key, let extBytes):
                    let ext: Int32
                    if let known = extensions[extBytes] {
                        ext = known
                    } else {
                        guard let decoded = validUTF8String(extBytes) else {
                            throw .extensionNotUTF8(path: displayPath, offset: entry.headerOffset, name: entry.name)
                        }
                        ext = Int32(result.extensions.count)
                        result.extensions.append(decoded)
                        extensions[extBytes] = ext
                    }
                    result.members.append(
                        ScannedMember(
                            key: SampleKey(bytes: key), ext: ext, headerOffset: entry.headerOffset,
                            dataOffset: entry.dataOffset, length: entry.size))
                    if let sequential {
                        result.crc32c.append(
                            try checksum(
                                sequential, offset: entry.dataOffset, count: entry.size, displayPath: displayPath,
                                isCancelled: isCancelled))
                    }
                case .metadata: result.skipped.metadataNames += 1
                case .noMatch: result.skipped.noExtension += 1
                }
            case .directory: result.skipped.directories += 1
            case .symlink: result.skipped.symlinks += 1
            case .hardLink: result.skipped.hardLinks += 1
            case .sparse: result.skipped.sparse += 1
            case .characterDevice, .blockDevice, .fifo, .volumeLabel, .other: result.skipped.otherTypes += 1
            }
        }
        return result
    }

    /// The CRC-32C of the members of a shard indexed earlier (`members`, by data offset, as the
    /// index holds them), reading the shard front to back; each member's own header is checked
    /// against its row first, so checksums are never recorded for bytes the index does not
    /// describe.
    ///
    /// - Throws: ``IngestError/shardDiffersFromIndex(path:index:offset:member:detail:)`` for the
    ///   first member whose header or row does not fit; ``IngestError/unreadableShard(_:)``,
    ///   ``IngestError/cancelled``.
    /// - Complexity: O(bytes of the shard).
    static func checksumIndexed(
        path: String, displayPath: String, indexPath: String, members: [StoredMember], isCancelled: () -> Bool
    ) throws(IngestError) -> [UInt32] {
        let (file, format) = try open(path)
        if format != .none {
            let stream: DecompressingReader
            do { stream = try DecompressingReader(file: file, format: format) } catch {
                throw .decompressionFailed(named(error, displayPath))
            }
            return try checksumIndexed(
                stream, tarSize: nil, displayPath: displayPath, indexPath: indexPath, members: members,
                isCancelled: isCancelled)
        }
        return try checksumIndexed(
            SequentialReader(file: file), tarSize: file.status.size, displayPath: displayPath, indexPath: indexPath,
            members: members, isCancelled: isCancelled)
    }

    /// ``checksumIndexed(path:displayPath:indexPath:members:isCancelled:)`` through `reader`;
    /// `tarSize` is the tar's size when known up front (a compressed stream's end shows as a read
    /// that ends early).
    private static func checksumIndexed<S: TarStream>(
        _ reader: S, tarSize: Int64?, displayPath: String, indexPath: String, members: [StoredMember],
        isCancelled: () -> Bool
    ) throws(IngestError) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(members.count)
        var block = [UInt8](repeating: 0, count: 512)
        do {
            for (i, m) in members.enumerated() {
                if i & 0xFF == 0xFF, isCancelled() { throw Cancelled() }
                let key = m.key?.bytes ?? []
                let name = MessageText.quoted(key + [UInt8(ascii: ".")] + Array(m.ext.utf8))
                let l = m.location
                let (end, overflow) = l.dataOffset.addingReportingOverflow(l.length)
                guard l.length >= 0, l.dataOffset >= 512, l.dataOffset % 512 == 0, !overflow,
                    end <= (tarSize ?? Int64.max)
                else {
                    throw Differs(
                        offset: l.dataOffset, member: name,
                        detail: "the index row (data offset \(l.dataOffset), length \(l.length)) does not fit the shard"
                    )
                }
                let got = try block.withUnsafeMutableBytes { try reader.read(into: $0, at: l.dataOffset - 512) }
                guard got == 512 else {
                    throw Differs(
                        offset: l.dataOffset - 512, member: name,
                        detail:
                            "the shard's tar ends at byte \(l.dataOffset - 512 + Int64(got)), before this member's header"
                    )
                }
                let mismatch = block.withUnsafeBytes { block in
                    key.withUnsafeBytes { k in
                        Array(m.ext.utf8).withUnsafeBytes { e in
                            MemberHeaderCheck.check(
                                block, length: l.length, key: k, ext: e, extended: l.headerOffset < l.dataOffset - 512)
                        }
                    }
                }
                if let mismatch { throw Differs(offset: l.dataOffset - 512, member: name, detail: "\(mismatch)") }
                out.append(
                    try checksum(
                        reader, offset: l.dataOffset, count: l.length, displayPath: displayPath,
                        isCancelled: isCancelled))
            }
        } catch let error as IngestError {
            throw error
        } catch let error as IOError {
            throw .unreadableShard(error)
        } catch let error as DecompressionError {
            throw .decompressionFailed(named(error, displayPath))
        } catch let error as Differs {
            throw .shardDiffersFromIndex(
                path: displayPath, index: indexPath, offset: error.offset, member: error.member, detail: error.detail)
        } catch {
            throw .cancelled
        }
        return out
    }

    /// The CRC-32C of the `count` bytes at `offset`, read through `reader`.
    ///
    /// - Throws: ``IngestError/cancelled`` (polled every buffer-full), or
    ///   ``IngestError/unreadableShard(_:)`` when a read fails or the file ends early.
    /// - Complexity: O(count) CRC work, one `pread` per buffer-full.
    static func checksum<S: TarStream>(
        _ reader: S, offset: Int64, count: Int64, displayPath: String, isCancelled: () -> Bool
    ) throws(IngestError) -> UInt32 {
        var crc = CRC32C()
        var sincePoll = 0
        do {
            try reader.forEachPiece(offset: offset, count: count) { piece in
                sincePoll += piece.count
                if sincePoll >= 4 << 20 {
                    sincePoll = 0
                    if isCancelled() { throw Cancelled() }
                }
                crc.update(piece)
            }
        } catch let error as IOError {
            throw .unreadableShard(error)
        } catch let error as DecompressionError {
            throw .decompressionFailed(named(error, displayPath))
        } catch {
            throw .cancelled
        }
        return crc.value
    }
}

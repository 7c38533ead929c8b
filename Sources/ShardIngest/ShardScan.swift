import ShardCore
import ShardIO
import ShardIndex

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
}

enum ShardScanner {
    /// Scans the headers of the shard at `path`; with `checksums`, reads the whole shard front to
    /// back instead (large reads into one buffer), computing each member's CRC-32C as its header
    /// is found.
    ///
    /// - Throws: ``IngestError`` naming the shard and offset.
    static func scan(path: String, displayPath: String, checksums: Bool = false, isCancelled: () -> Bool)
        throws(IngestError) -> ShardScan
    {
        let file: ReadOnlyFile
        do { file = try ReadOnlyFile(path: path) } catch { throw .unreadableShard(error) }
        // The scanner reads through one buffer: a small window for headers alone (the headers of
        // small members share one `pread`), or large reads that also serve the members' data for
        // their checksums, so a scan with checksums is one pass over the shard.
        let reader = SequentialReader(
            file: file, bufferSize: checksums ? SequentialReader.defaultBufferSize : SequentialReader.headerWindowSize)
        let sequential = checksums ? reader : nil
        var scanner = TarScanner(reader)
        var result = ShardScan()
        var extensions: [[UInt8]: Int32] = [:]
        var n = 0
        while true {
            let entry: TarEntry?
            do { entry = try scanner.next() } catch {
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
                                sequential, offset: entry.dataOffset, count: entry.size, isCancelled: isCancelled))
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
        struct Cancelled: Error {}
        struct Differs: Error {
            var offset: Int64
            var member: String
            var detail: String
        }
        let file: ReadOnlyFile
        do { file = try ReadOnlyFile(path: path) } catch { throw .unreadableShard(error) }
        let reader = SequentialReader(file: file)
        var out: [UInt32] = []
        out.reserveCapacity(members.count)
        do {
            for (i, m) in members.enumerated() {
                if i & 0xFF == 0xFF, isCancelled() { throw Cancelled() }
                let key = m.key?.bytes ?? []
                let name = MessageText.quoted(key + [UInt8(ascii: ".")] + Array(m.ext.utf8))
                let l = m.location
                let (end, overflow) = l.dataOffset.addingReportingOverflow(l.length)
                guard l.length >= 0, l.dataOffset >= 512, l.dataOffset % 512 == 0, !overflow,
                    end <= file.status.size
                else {
                    throw Differs(
                        offset: l.dataOffset, member: name,
                        detail: "the index row (data offset \(l.dataOffset), length \(l.length)) does not fit the shard"
                    )
                }
                let mismatch = try reader.withContiguousBytes(offset: l.dataOffset - 512, count: 512) { block in
                    key.withUnsafeBytes { k in
                        Array(m.ext.utf8).withUnsafeBytes { e in
                            MemberHeaderCheck.check(
                                block, length: l.length, key: k, ext: e, extended: l.headerOffset < l.dataOffset - 512)
                        }
                    }
                }
                if let mismatch { throw Differs(offset: l.dataOffset - 512, member: name, detail: "\(mismatch)") }
                var crc = CRC32C()
                try reader.forEachPiece(offset: l.dataOffset, count: l.length) { piece in
                    if piece.count == reader.bufferSize, isCancelled() { throw Cancelled() }
                    crc.update(piece)
                }
                out.append(crc.value)
            }
        } catch let error as IOError {
            throw .unreadableShard(error)
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
    static func checksum(_ reader: SequentialReader, offset: Int64, count: Int64, isCancelled: () -> Bool)
        throws(IngestError) -> UInt32
    {
        struct Cancelled: Error {}
        var crc = CRC32C()
        do {
            try reader.forEachPiece(offset: offset, count: count) { piece in
                if piece.count == reader.bufferSize, isCancelled() { throw Cancelled() }
                crc.update(piece)
            }
        } catch let error as IOError {
            throw .unreadableShard(error)
        } catch {
            throw .cancelled
        }
        return crc.value
    }
}

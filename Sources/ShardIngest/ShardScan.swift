import ShardCore
import ShardIO

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
}

enum ShardScanner {
    /// Scans the headers of the shard at `path` (never its member data).
    ///
    /// - Throws: ``IngestError`` naming the shard and offset.
    static func scan(path: String, displayPath: String, isCancelled: () -> Bool) throws(IngestError) -> ShardScan {
        let file: ReadOnlyFile
        do { file = try ReadOnlyFile(path: path) } catch { throw .unreadableShard(error) }
        var scanner = TarScanner(ReadAheadFile(file))
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
}

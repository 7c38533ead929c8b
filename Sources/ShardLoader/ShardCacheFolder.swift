import ShardCompression
import ShardCore
import ShardIO
import ShardIndex

#if canImport(Glibc)
    import Glibc
#endif

/// A folder of whole decompressed copies of compressed shards that cannot be entered in the
/// middle (one zstd frame, one xz block, bzip2) and do not fit in RAM: each copy is a plain tar,
/// written once through ``AtomicFile`` (so a reader never sees half of one) and read with `pread`.
///
/// Copies are named after the shard (its stored path, size, modification time and uncompressed
/// size, hashed), so processes reading the same index share them, and a shard that changes gets
/// a new copy. The folder holds at most ``limit`` bytes of copies: before a new one is written,
/// the least recently used ones (by modification time, which a use refreshes) are deleted. A copy
/// whose size is not the recorded uncompressed size is never used.
///
/// ```swift
/// let folder = try ShardCacheFolder(path: "/scratch/shardstore-cache", limit: 64 << 30)
/// ```
final class ShardCacheFolder: Sendable {
    /// The folder.
    let path: String
    /// The most bytes of copies kept in it.
    let limit: Int64

    /// Every copy's name ends so; nothing else in the folder is ever deleted.
    static let suffix = ".shardstore-cache.tar"

    /// The environment variables that name the folder and its limit when the API does not.
    static let folderVariable = "SHARDSTORE_CACHE_DIR"
    static let limitVariable = "SHARDSTORE_CACHE_LIMIT"
    /// The limit when none is given: 16 GiB.
    static let defaultLimit: Int64 = 16 << 30

    /// Uses the folder at `path`, which must exist.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) when `path` is not a folder.
    init(path: String, limit: Int64) throws {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw DatasetError(
                .invalidArgument,
                "the cache folder '\(MessageText.escaped(path))' does not exist or is not a folder; create it first (mkdir -p)"
            )
        }
        self.path = path
        self.limit = max(limit, 0)
    }

    /// The folder and limit from the environment (``folderVariable``, ``limitVariable``), or nil
    /// when no folder is named.
    ///
    /// - Throws: ``DatasetError`` for a folder that does not exist or a limit that is no size.
    static func fromEnvironment() throws -> ShardCacheFolder? {
        guard let folder = getenv(folderVariable).map({ String(cString: $0) }), !folder.isEmpty else { return nil }
        var limit = defaultLimit
        if let text = getenv(limitVariable).map({ String(cString: $0) }), !text.isEmpty {
            do { limit = try MemoryProbe.parseSize(text) } catch {
                throw DatasetError(.invalidArgument, "\(limitVariable): \(error)")
            }
        }
        return try ShardCacheFolder(path: folder, limit: limit)
    }

    /// The copy's file name for `record`: its base name (letters, digits, `-`, `_`, `.`), then a
    /// 64-bit hash of what identifies its contents.
    func name(for record: ShardRecord, indexPath: String) -> String {
        let identity = Array(
            "\(Paths.absolute(indexPath))\u{0}\(record.path)\u{0}\(record.size)\u{0}\(record.modificationTimeNanoseconds)\u{0}\(record.uncompressedSize ?? -1)"
                .utf8)
        var low = CRC32C()
        low.update(identity)
        var high = CRC32C()
        high.update(identity.reversed())
        let hash = (UInt64(high.value) << 32) | UInt64(low.value)
        let hex = String(hash, radix: 16)
        let base = Paths.basename(of: record.path).unicodeScalars.prefix(80).map { c -> Character in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "-_.".unicodeScalars.contains(c))
                ? Character(c) : "_"
        }
        return String(base) + "-" + String(repeating: "0", count: 16 - hex.count) + hex + Self.suffix
    }

    /// The copy of `shard` in the folder, written first when it is missing (decompressing
    /// `source`, its file or its remote object, front to back).
    ///
    /// - Throws: ``CompressedShardError`` when the data does not decompress to the recorded size;
    ///   `IOError` when the copy cannot be written (a full disk) or read.
    func copy(of shard: CompressedShards.Shard, from source: CompressedSource) throws -> ReadOnlyFile {
        let size = shard.record.uncompressedSize!
        let target = path + "/" + name(for: shard.record, indexPath: shard.indexPath)
        if let existing = try? ReadOnlyFile(path: target), existing.status.size == size {
            // A use makes it the most recently used.
            _ = utimensat(AT_FDCWD, target, nil, 0)
            return existing
        }
        makeRoom(for: size)
        let out = try AtomicFile(destination: target)
        do {
            try DecompressedShard.decompressWhole(shard, source) { try out.write($0) }
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
        return try ReadOnlyFile(path: target)
    }

    /// Deletes the least recently used copies until `incoming` more bytes fit under ``limit``.
    private func makeRoom(for incoming: Int64) {
        var copies: [(name: String, size: Int64, used: Int64)] = []
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let listing = dup(fd)
        guard listing >= 0, let dir = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            return
        }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasSuffix(Self.suffix), !name.hasPrefix(".") else { continue }
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            copies.append(
                (name, Int64(st.st_size), Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)))
        }
        closedir(dir)
        var total = copies.reduce(Int64(0)) { $0 + $1.size }
        for copy in copies.sorted(by: { $0.used < $1.used }) {
            guard total + incoming > limit else { break }
            // A reader that has the copy open keeps reading it: unlinking frees it after them.
            if unlinkat(fd, copy.name, 0) == 0 { total -= copy.size }
        }
    }
}

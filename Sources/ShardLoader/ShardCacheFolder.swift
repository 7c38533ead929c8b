import ShardCompression
import ShardCore
import ShardIO
import ShardIndex

#if canImport(Glibc)
    import Glibc
#endif

/// A folder of whole shard copies, each a plain tar read with `pread`: decompressed copies of
/// compressed shards that cannot be entered in the middle (one zstd frame, one xz block, bzip2)
/// and do not fit in RAM, and downloaded copies of remote shards (S3, HTTP(S)), so that repeated
/// epochs read the network once. Each copy is written once through ``AtomicFile`` (so a reader
/// never sees half of one).
///
/// Copies are named after what identifies their contents, hashed: a compressed shard's stored
/// path, size, modification time and uncompressed size (with the index's path); a remote shard's
/// URL, size, ETag and Last-Modified, so processes reading the same objects share copies and a
/// replaced object gets a new copy. The folder holds at most ``limit`` bytes of copies: before a
/// new one is written, the least recently used ones (by modification time, which a use refreshes)
/// are deleted. A copy whose size is not the expected one is never used.
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

    /// The folder at `directory`, else the one `SHARDSTORE_CACHE_DIR` names; nil when neither
    /// names one. Its limit is `limit`, else `SHARDSTORE_CACHE_LIMIT`, else ``defaultLimit``.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for a folder that does not exist or a limit
    ///   in the environment that is no size.
    static func named(_ directory: String?, limit: Int64?) throws -> ShardCacheFolder? {
        let environment = getenv(folderVariable).map { String(cString: $0) } ?? ""
        guard let path = directory ?? (environment.isEmpty ? nil : environment) else { return nil }
        if let limit { return try ShardCacheFolder(path: path, limit: limit) }
        var fallback = defaultLimit
        if let text = getenv(limitVariable).map({ String(cString: $0) }), !text.isEmpty {
            do { fallback = try MemoryProbe.parseSize(text) } catch {
                throw DatasetError(.invalidArgument, "\(limitVariable): \(error)")
            }
        }
        return try ShardCacheFolder(path: path, limit: fallback)
    }

    /// The copy's file name for compressed shard `record` of the index at `indexPath`: its base
    /// name (letters, digits, `-`, `_`, `.`), then a 64-bit hash of what identifies its contents.
    func name(for record: ShardRecord, indexPath: String) -> String {
        Self.name(
            base: record.path,
            identity:
                "\(Paths.absolute(indexPath))\u{0}\(record.path)\u{0}\(record.size)\u{0}\(record.modificationTimeNanoseconds)\u{0}\(record.uncompressedSize ?? -1)"
        )
    }

    /// The copy's file name for remote shard `record`: its base name, then a hash of its URL,
    /// size, ETag and Last-Modified (not the index: every index naming the object shares it).
    func remoteName(for record: ShardRecord) -> String {
        Self.name(
            base: record.path,
            identity:
                "remote\u{0}\(record.path)\u{0}\(record.size)\u{0}\(record.etag ?? "")\u{0}\(record.lastModified ?? "")"
        )
    }

    /// `base`'s last path component (letters, digits, `-`, `_`, `.`; at most 80), a 64-bit hash of
    /// `identity` in hex, and ``suffix``.
    private static func name(base path: String, identity text: String) -> String {
        let identity = Array(text.utf8)
        var low = CRC32C()
        low.update(identity)
        var high = CRC32C()
        high.update(identity.reversed())
        let hash = (UInt64(high.value) << 32) | UInt64(low.value)
        let hex = String(hash, radix: 16)
        let base = Paths.basename(of: path).unicodeScalars.prefix(80).map { c -> Character in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "-_.".unicodeScalars.contains(c))
                ? Character(c) : "_"
        }
        return String(base) + "-" + String(repeating: "0", count: 16 - hex.count) + hex + suffix
    }

    /// The copy of `shard` in the folder, written first when it is missing (decompressing
    /// `source`, its file or its remote object, front to back).
    ///
    /// - Throws: ``CompressedShardError`` when the data does not decompress to the recorded size;
    ///   `IOError` when the copy cannot be written (a full disk) or read.
    func copy(of shard: CompressedShards.Shard, from source: CompressedSource) throws -> ReadOnlyFile {
        try copy(named: name(for: shard.record, indexPath: shard.indexPath), size: shard.record.uncompressedSize!) {
            out in try WholeShard.decompressWhole(shard, source) { try out.write($0) }
        }
    }

    /// The copy called `name`, of `size` bytes, opened for reading: the one in the folder when it
    /// has that size (its modification time is set to now: it becomes the most recently used),
    /// else a new one that `write` fills (after the least recently used copies are deleted to
    /// make room), published only when it holds exactly `size` bytes.
    ///
    /// - Throws: what `write` throws; ``DatasetError`` (`.io`) when `write` wrote another number of
    ///   bytes; `IOError` when the copy cannot be written (a full disk) or read.
    func copy(named name: String, size: Int64, write: (AtomicFile) throws -> Void) throws -> ReadOnlyFile {
        let target = path + "/" + name
        if let existing = try? ReadOnlyFile(path: target), existing.status.size == size {
            Self.touch(target)
            return existing
        }
        makeRoom(for: size)
        // The partial copies of processes killed while writing this one.
        AtomicFile.removeStalePartials(for: target)
        let out = try AtomicFile(destination: target)
        do {
            try write(out)
            var st = stat()
            guard fstat(out.descriptor, &st) == 0, Int64(st.st_size) == size else {
                throw DatasetError(
                    .io,
                    "the copy '\(MessageText.escaped(target))' in the cache folder came out at \(Int64(st.st_size)) bytes instead of \(size); it was not kept: check the folder's free space and read again"
                )
            }
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
        Self.touch(target)
        return try ReadOnlyFile(path: target)
    }

    /// Sets the file's modification time to the current time to the nanosecond (a file system's
    /// own timestamps are coarser, which would leave copies written in a row unordered).
    private static func touch(_ path: String) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let times = [now, now]
        _ = utimensat(AT_FDCWD, path, times, 0)
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

import ShardCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A whole file mapped read-only into memory (`mmap(2)` with `PROT_READ` and `MAP_SHARED`), safe to
/// share between threads.
///
/// The descriptor is closed as soon as the mapping exists; the mapping itself is removed
/// (`munmap(2)`) when the object is released. A 0-byte file is allowed and maps nothing.
///
/// ```swift
/// let shard = try MappedFile(path: "shard-000000.tar")
/// shard.advise(.random)
/// let firstByte = try shard.withBytes(at: 512, count: 1) { $0[0] }
/// ```
///
/// **Lifetime.** The buffer passed to ``withBytes(at:count:_:)`` is valid only inside the closure:
/// do not store it or let it escape. Copy the bytes out (`Array(buffer)`) to keep them. Holding a
/// reference to the `MappedFile` keeps the mapping alive, so a reader that holds one stays valid
/// even after a ``ShardFileCache`` evicted it.
///
/// **Truncation.** The mapping covers the file's size at open. If the file is truncated (or
/// rewritten shorter) afterwards, touching a mapped page beyond the new end raises `SIGBUS`, which
/// ends the process; this type does not and cannot catch it. ShardStore guards against this by
/// comparing the file's size and modification time (``status``) with the index when it opens a
/// shard, and shards must not be modified while they are being read.
public final class MappedFile: RandomAccessBytes, @unchecked Sendable {
    /// How the file's pages are expected to be accessed, passed to `madvise(2)`.
    public enum Advice: Sendable, Equatable {
        /// No special treatment: the kernel's default read-ahead (`MADV_NORMAL`).
        case normal
        /// Accesses are random: the kernel reads ahead less (`MADV_RANDOM`).
        case random
        /// Accesses are sequential: the kernel reads ahead aggressively (`MADV_SEQUENTIAL`).
        case sequential
        /// `count` bytes at `offset` will be needed soon: start reading them in (`MADV_WILLNEED`).
        /// The range is clipped to the file.
        case willNeed(offset: Int64, count: Int)
    }

    /// The path the file was opened with.
    public let path: String
    /// The file's status at open; the mapping covers `status.size` bytes.
    public let status: FileStatus
    /// The start of the mapping (nil for a 0-byte file).
    private let base: UnsafeRawPointer?

    /// Opens `path` read-only, records its status (`fstat(2)`), maps the whole file and closes the
    /// descriptor.
    ///
    /// - Throws: ``IOError`` naming the path when the file cannot be opened or examined, is not a
    ///   regular file, or cannot be mapped (for example when `vm.max_map_count` is reached).
    /// - Complexity: O(1); pages are read in lazily on first access.
    public init(path: String) throws(IOError) {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw IOError("open", path: path, errno: currentErrno()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError("stat", path: path, errno: currentErrno()) }
        let status = FileStatus(st)
        guard status.isRegularFile else {
            throw IOError("map", path: path, errno: 0, detail: "not a regular file")
        }
        guard status.size <= Int64(Int.max) else {
            throw IOError("map", path: path, errno: 0, detail: "file of \(status.size) bytes is too large to map")
        }
        var base: UnsafeRawPointer? = nil
        if status.size > 0 {
            let p = mmap(nil, Int(status.size), PROT_READ, MAP_SHARED, fd, 0)
            guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw IOError("map", path: path, errno: currentErrno(), detail: "\(status.size) bytes")
            }
            base = UnsafeRawPointer(p)
        }
        self.path = path
        self.status = status
        self.base = base
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), Int(status.size)) }
    }

    /// The file's size at open, which is the size of the mapping.
    public var byteCount: Int64 { status.size }

    /// Calls `body` with a view of `count` mapped bytes starting at `offset`, without copying.
    ///
    /// The view is valid only inside `body`; do not let it escape.
    ///
    /// ```swift
    /// let header = try shard.withBytes(at: 0, count: 512) { Array($0) }
    /// ```
    ///
    /// - Precondition: `count >= 0`.
    /// - Throws: ``IOError`` naming the path and offset when `offset` is negative or
    ///   `offset + count` is beyond the end of the mapping; otherwise whatever `body` throws.
    /// - Complexity: O(1) plus the cost of `body`.
    public func withBytes<R>(at offset: Int64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        precondition(count >= 0, "negative byte count \(count)")
        try checkRange(offset: offset, count: count)
        guard let base, count > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + Int(offset), count: count))
    }

    /// Calls `body` with a view of the whole mapping (empty for a 0-byte file), without copying.
    ///
    /// The view is valid only inside `body`, and only while the file keeps its size: do not let it
    /// escape, and check offsets against `count` before reading.
    ///
    /// ```swift
    /// let last = shard.withMapping { $0.last }
    /// ```
    ///
    /// - Throws: what `body` throws.
    /// - Complexity: O(1) plus the cost of `body`.
    public func withMapping<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : Int(status.size)))
    }

    /// Tells the kernel how the mapping will be accessed (`madvise(2)`).
    ///
    /// Advice is a hint: a failure is ignored, and a 0-byte file or an empty `willNeed` range
    /// does nothing.
    ///
    /// ```swift
    /// shard.advise(.willNeed(offset: record.offset, count: record.size))
    /// ```
    ///
    /// - Complexity: O(1) for the call; `willNeed` starts reading pages in the background.
    public func advise(_ advice: Advice) {
        guard let base else { return }
        let size = Int(status.size)
        switch advice {
        case .normal:
            _ = madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_NORMAL)
        case .random:
            _ = madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_RANDOM)
        case .sequential:
            _ = madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_SEQUENTIAL)
        case .willNeed(let offset, let count):
            guard offset >= 0, offset < status.size, count > 0 else { return }
            let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 1)
            let start = Int(offset) / page * page
            let end = Int(offset) + min(count, size - Int(offset))
            _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_WILLNEED)
        }
    }

    /// Copies up to `buffer.count` mapped bytes at `offset` into `buffer`; returns fewer bytes only
    /// at the end of the file (0 at or past the end).
    ///
    /// - Throws: ``IOError`` naming the path when `offset` is negative.
    /// - Complexity: O(bytes copied).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0 else {
            throw IOError("read", path: path, errno: 0, detail: "negative byte offset \(offset)")
        }
        guard let base, offset < status.size, buffer.count > 0 else { return 0 }
        let n = Int(min(Int64(buffer.count), status.size - offset))
        buffer.baseAddress!.copyMemory(from: base + Int(offset), byteCount: n)
        return n
    }

    /// Throws unless `offset..<offset + count` lies within the mapping.
    private func checkRange(offset: Int64, count: Int) throws(IOError) {
        guard offset >= 0 else {
            throw IOError("read", path: path, errno: 0, detail: "negative byte offset \(offset)")
        }
        guard offset <= status.size, Int64(count) <= status.size - offset else {
            throw IOError(
                "read", path: path, errno: 0,
                detail: "mapped file ends at byte \(status.size), \(count) bytes needed from offset \(offset)")
        }
    }
}

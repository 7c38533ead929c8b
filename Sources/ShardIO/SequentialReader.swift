import ShardCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads byte ranges of a file that come in increasing offset order with large `pread`s into one
/// buffer of fixed size, so a pass over a whole shard costs one read per buffer, whatever the
/// members' sizes. A range before the buffered window, or beyond it, refills the buffer from
/// the range's start; memory stays at the buffer size.
///
/// For one thread at a time.
///
/// ```swift
/// let reader = SequentialReader(file: try ReadOnlyFile(path: "shard.tar"))
/// var crc = CRC32C()
/// try reader.forEachPiece(offset: 1024, count: 5000) { crc.update($0) }
/// ```
public final class SequentialReader: RandomAccessBytes {
    /// The file read.
    public let file: ReadOnlyFile
    /// Bytes read from the file so far (every `pread`, gaps between ranges included).
    public private(set) var bytesRead: Int64 = 0
    private let buffer: UnsafeMutableRawBufferPointer
    /// The file offset of `buffer[0]`, and how many bytes the buffer holds from there.
    private var windowStart: Int64 = 0
    private var windowCount = 0

    /// The default buffer: 4 MiB, large enough that the syscall cost is small against the copy
    /// when every byte is read (checksums).
    public static let defaultBufferSize = 4 << 20

    /// A buffer for reading tar headers alone (a scan, `verify`): 4 KiB, so that in a shard of
    /// small members (a label, a JSON record and an array beside each image) several headers
    /// share one `pread`, for a few KiB more copied.
    public static let headerWindowSize = 4096

    /// A reader over `file` with a buffer of `bufferSize` bytes (4 MiB by default); tells the
    /// kernel the file will be read sequentially (`posix_fadvise`).
    ///
    /// - Precondition: `bufferSize >= 512`.
    public init(file: ReadOnlyFile, bufferSize: Int = defaultBufferSize) {
        precondition(bufferSize >= 512, "a sequential reader needs a buffer of at least one tar block")
        self.file = file
        buffer = .allocate(byteCount: bufferSize, alignment: 4096)
        #if canImport(Glibc)
            _ = posix_fadvise(file.descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
        #endif
    }

    deinit { buffer.deallocate() }

    /// The buffer's size: the most ``withContiguousBytes(offset:count:_:)`` can hand out.
    public var bufferSize: Int { buffer.count }

    /// Calls `body` with the `count` bytes at `offset`, in one or more consecutive pieces.
    ///
    /// - Throws: `IOError` when a read fails or the file ends before `offset + count` (naming
    ///   the path, the offset and where the file ends), or what `body` throws.
    /// - Complexity: O(count) copies, one `pread` per buffer-full.
    public func forEachPiece(offset: Int64, count: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        precondition(offset >= 0 && count >= 0)
        var position = offset
        let end = offset + count
        while position < end {
            try fill(at: position, needing: 1, rangeEnd: end)
            let available = windowStart + Int64(windowCount) - position
            let n = Int(min(available, end - position))
            let start = Int(position - windowStart)
            try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[start..<(start + n)]))
            position += Int64(n)
        }
    }

    /// Calls `body` with the `count` bytes at `offset` in one piece.
    ///
    /// - Precondition: `count <= bufferSize`.
    /// - Throws: `IOError` when a read fails or the file ends before `offset + count`.
    public func withContiguousBytes<R>(offset: Int64, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws
        -> R
    {
        precondition(offset >= 0 && count >= 0 && count <= buffer.count)
        try fill(at: offset, needing: count, rangeEnd: offset + Int64(count))
        let start = Int(offset - windowStart)
        return try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[start..<(start + count)]))
    }

    /// The file's size at open.
    public var byteCount: Int64 { file.byteCount }

    /// Copies up to `buffer.count` bytes at `offset` (``RandomAccessBytes``, for a tar scanner
    /// sharing the buffer): from the window when it holds them, else after refilling it from
    /// `offset`; reads larger than the buffer go to the file directly. Fewer bytes only at the
    /// end of the file.
    ///
    /// - Throws: `IOError` when `pread` fails.
    public func read(into destination: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0, destination.count > 0 else { return 0 }
        if destination.count > buffer.count {
            let got = try file.readAll(into: destination, at: offset)
            bytesRead += Int64(got)
            return got
        }
        if !(offset >= windowStart && offset + Int64(destination.count) <= windowStart + Int64(windowCount)) {
            try refill(at: offset)
        }
        let available = Int(max(0, min(Int64(destination.count), windowStart + Int64(windowCount) - offset)))
        if available > 0 {
            destination.baseAddress!.copyMemory(
                from: buffer.baseAddress! + Int(offset - windowStart), byteCount: available)
        }
        return available
    }

    /// Refills the window from `offset` (fewer bytes only at the end of the file).
    private func refill(at offset: Int64) throws(IOError) {
        windowStart = offset
        windowCount = 0
        let got = try file.readAll(into: buffer, at: offset)
        bytesRead += Int64(got)
        windowCount = got
    }

    /// Makes the window hold `needing` bytes from `offset`, refilling it from `offset` when not.
    private func fill(at offset: Int64, needing: Int, rangeEnd: Int64) throws(IOError) {
        if offset >= windowStart, offset + Int64(needing) <= windowStart + Int64(windowCount) { return }
        try refill(at: offset)
        let got = windowCount
        guard got >= needing else {
            throw IOError(
                "read", path: file.path, errno: 0,
                detail:
                    "the file ends at byte \(offset + Int64(got)), but bytes up to \(rangeEnd) are needed from offset \(offset)"
            )
        }
    }
}

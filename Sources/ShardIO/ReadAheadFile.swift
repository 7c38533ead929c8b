import ShardCore

/// A `RandomAccessBytes` over a ``ReadOnlyFile`` that reads a small window ahead: a read of at
/// most ``windowSize`` bytes fills the window from its offset with one `pread`, and the reads
/// that fall inside the window afterwards are served from it without a syscall.
///
/// Made for the header scan of ingest: in a shard of small members (a label, a JSON record and
/// an array beside each image) several headers share one window, so the scan makes about half
/// the syscalls of one `pread` per header, and copies a few KiB more.
///
/// ```swift
/// var scanner = TarScanner(ReadAheadFile(try ReadOnlyFile(path: "shard-000000.tar")))
/// ```
///
/// Not thread-safe: one scanning thread owns it.
public final class ReadAheadFile: RandomAccessBytes {
    /// The bytes one refill reads: a few headers and small members.
    public static let windowSize = 4096

    /// The file read.
    public let file: ReadOnlyFile
    private let window: UnsafeMutableRawBufferPointer
    private var windowStart: Int64 = 0
    private var windowCount = 0

    /// Reads `file` through a window of ``windowSize`` bytes.
    public init(_ file: ReadOnlyFile) {
        self.file = file
        window = .allocate(byteCount: Self.windowSize, alignment: 16)
    }

    deinit { window.deallocate() }

    /// The file's size at open.
    public var byteCount: Int64 { file.byteCount }

    /// Reads up to `buffer.count` bytes at `offset`: from the window when it holds them, else with
    /// one `pread` that refills the window (reads larger than the window go straight to the file).
    ///
    /// - Throws: ``IOError`` naming the file and offset when `pread` fails.
    /// - Complexity: O(`buffer.count`), plus one syscall when the window does not hold the bytes.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard buffer.count <= Self.windowSize, offset >= 0 else { return try file.readAll(into: buffer, at: offset) }
        if offset < windowStart || offset + Int64(buffer.count) > windowStart + Int64(windowCount) {
            windowCount = 0
            windowStart = offset
            windowCount = try file.readAll(into: window, at: offset)
        }
        let from = Int(offset - windowStart)
        let n = min(buffer.count, windowCount - from)
        guard n > 0 else { return 0 }
        buffer.baseAddress!.copyMemory(from: window.baseAddress! + from, byteCount: n)
        return n
    }
}

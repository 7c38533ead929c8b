import ShardCore
import ShardIO

/// Forward-only streaming decompression of a whole shard as a ``RandomAccessBytes``, for
/// ShardCore's `TarScanner` (which reads headers at increasing offsets and skips member data by
/// offset) and for checksumming member data in the same pass. It collects the seek table on the
/// way; ``finish()`` checks the rest of the file and returns it.
///
/// Memory is bounded: a window buffer of `bufferSize` bytes, a 256 KiB input buffer, and the
/// codec's state: zlib about 44 KiB; bzip2 about 3.5 MiB; zstd the frame's window (libzstd
/// refuses windows over 128 MiB); xz the dictionary the file declares (refused over 512 MiB).
/// For one thread at a time.
///
/// ```swift
/// let file = try ReadOnlyFile(path: "shard-000001.tar.gz")
/// let reader = try DecompressingReader(file: file, format: .gzip)
/// var scanner = TarScanner(reader)
/// while let entry = try scanner.next() { ... }
/// let info = try reader.finish()
/// ```
public final class DecompressingReader: RandomAccessBytes {
    /// The shard's format.
    public let format: CompressionFormat
    private let decoder: any ShardDecoder
    private let buffer: UnsafeMutableRawBufferPointer
    /// The uncompressed offset of `buffer[0]`.
    private var windowStart: Int64 = 0
    private var windowCount = 0
    private var ended = false
    private var info: CompressedShardInfo?

    /// How much of what was produced last stays readable behind the newest byte.
    static let retained = 64 << 10

    /// Starts a pass over `file` (nothing is read yet).
    ///
    /// - Parameters:
    ///   - format: the shard's format (from ``CompressionFormat/detect(_:)``); not `.none`.
    ///   - seekSpan: gzip: the uncompressed distance between checkpoints (at least 64 KiB).
    ///   - bufferSize: the window buffer's size (at least 256 KiB).
    /// - Throws: never for now (the first read reports a bad header); typed for the future.
    public convenience init(
        file: ReadOnlyFile, format: CompressionFormat, seekSpan: Int64 = SeekTable.defaultSpan,
        bufferSize: Int = 4 << 20
    ) throws(DecompressionError) {
        try self.init(source: CompressedSource(file), format: format, seekSpan: seekSpan, bufferSize: bufferSize)
    }

    /// Starts a pass over `source` (a local file or a remote object; nothing is read yet), as
    /// ``init(file:format:seekSpan:bufferSize:)`` does over a file.
    ///
    /// - Throws: never for now (the first read reports a bad header); typed for the future.
    public init(
        source: CompressedSource, format: CompressionFormat, seekSpan: Int64 = SeekTable.defaultSpan,
        bufferSize: Int = 4 << 20
    ) throws(DecompressionError) {
        precondition(format != .none, "DecompressingReader needs a compressed format")
        precondition(seekSpan >= 64 << 10, "seekSpan must be at least 64 KiB")
        precondition(bufferSize >= 256 << 10, "bufferSize must be at least 256 KiB")
        self.format = format
        decoder = try Self.forwardDecoder(
            input: CompressedInput(source: source, format: format), format: format, seekSpan: seekSpan)
        buffer = .allocate(byteCount: bufferSize, alignment: 16)
    }

    /// A decoder of `input` from the file's start, collecting a seek point every `seekSpan`
    /// uncompressed bytes (gzip) or at each frame or block (zstd, xz).
    static func forwardDecoder(input: CompressedInput, format: CompressionFormat, seekSpan: Int64)
        throws(DecompressionError) -> any ShardDecoder
    {
        switch format {
        case .gzip: return try GzipDecoder(input: input, start: .forward(span: seekSpan))
        case .zstd: return ZstdDecoder(input: input, start: .forward(span: seekSpan))
        case .xz: return XZDecoder(input: input, start: .forward(span: seekSpan))
        case .bzip2: return BZip2Decoder(input: input)
        case .none: preconditionFailure("no decoder for uncompressed data")
        }
    }

    deinit { buffer.deallocate() }

    /// `Int64.max` until the end of the data has been reached, then the uncompressed size.
    public var byteCount: Int64 { ended ? windowStart + Int64(windowCount) : .max }

    /// Compressed bytes consumed so far (for progress).
    public var compressedBytesRead: Int64 { decoder.input.offset }

    /// Decompresses until the window holds uncompressed byte `position` or the data ends;
    /// slides the window when the buffer is full, keeping the last ``retained`` bytes.
    private func fill(holding position: Int64) throws(DecompressionError) {
        while !ended && windowStart + Int64(windowCount) <= position {
            if windowCount == buffer.count {
                let keep = Self.retained
                let drop = windowCount - keep
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + drop, byteCount: keep)
                windowStart += Int64(drop)
                windowCount = keep
            }
            let n = try decoder.produce(into: UnsafeMutableRawBufferPointer(rebasing: buffer[windowCount...]))
            if n == 0 { ended = true } else { windowCount += n }
        }
    }

    private func behind(_ offset: Int64) -> DecompressionError {
        decoder.input.error(.behindWindow(offset: offset, windowStart: windowStart))
    }

    /// Copies up to `buffer.count` uncompressed bytes at `offset`, which may lie anywhere in the
    /// retained window (at least the last 64 KiB produced) or ahead of it (decompressing
    /// forward, discarding what lies between).
    ///
    /// Returns fewer bytes only at the end of the data.
    ///
    /// - Throws: ``DecompressionError`` for bad data, and of kind `.behindWindow` for an offset
    ///   before the window.
    /// - Complexity: O(offset + count − the window's end) decompression.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try readTyped(into: buffer, at: offset)
    }

    private func readTyped(into destination: UnsafeMutableRawBufferPointer, at offset: Int64) throws(DecompressionError)
        -> Int
    {
        guard offset >= windowStart else { throw behind(offset) }
        var done = 0
        while done < destination.count {
            let position = offset + Int64(done)
            try fill(holding: position)
            let windowEnd = windowStart + Int64(windowCount)
            guard position < windowEnd else { break }
            let n = Int(min(Int64(destination.count - done), windowEnd - position))
            (destination.baseAddress! + done).copyMemory(
                from: buffer.baseAddress! + Int(position - windowStart), byteCount: n)
            done += n
        }
        return done
    }

    /// Calls `body` with the `count` uncompressed bytes at `offset` in consecutive pieces (each
    /// valid only during its call), like ShardIO's `SequentialReader.forEachPiece`.
    ///
    /// ```swift
    /// var crc = CRC32C()
    /// try reader.forEachPiece(offset: entry.dataOffset, count: entry.size) { crc.update($0) }
    /// ```
    /// - Throws: ``DecompressionError`` (`.endsEarly` when the data ends before
    ///   `offset + count`, `.behindWindow` for an offset before the window), or what `body` throws.
    /// - Complexity: O(offset + count − the window's end) decompression.
    public func forEachPiece(offset: Int64, count: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        precondition(offset >= 0 && count >= 0)
        guard offset >= windowStart else { throw behind(offset) }
        var position = offset
        let end = offset + count
        while position < end {
            try fill(holding: position)
            let windowEnd = windowStart + Int64(windowCount)
            guard position < windowEnd else {
                throw decoder.input.error(.endsEarly(needed: end, end: windowEnd))
            }
            let n = Int(min(windowEnd - position, end - position))
            let start = Int(position - windowStart)
            try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[start..<(start + n)]))
            position += Int64(n)
        }
    }

    /// Decompresses to the end of the file, checking every stream's trailer or checksum and
    /// what follows the last stream; returns the sizes and the seek table. Calling it again
    /// returns the same.
    ///
    /// - Throws: ``DecompressionError`` for bad, truncated or trailing data.
    /// - Complexity: O(the rest of the file).
    public func finish() throws(DecompressionError) -> CompressedShardInfo {
        if let info { return info }
        try fill(holding: .max)
        let size = windowStart + Int64(windowCount)
        var points = try decoder.collectedPoints()
        if (format == .zstd || format == .xz) && points.count < 2 { points = [] }
        let table = SeekTable(
            format: format, compressedSize: decoder.input.end, uncompressedSize: size, points: points)
        let info = CompressedShardInfo(seekTable: table)
        self.info = info
        return info
    }
}

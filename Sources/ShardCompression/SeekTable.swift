import ShardCore

/// Where a compressed shard can be entered: gzip checkpoints (with their windows), zstd frame
/// starts, xz block starts. Empty (not seekable) for a single-frame zstd, a single-block xz, and
/// bzip2.
///
/// A ``DecompressingReader`` collects it during ingest; the index stores ``serialized()`` and
/// gives it back to ``init(decoding:format:compressedSize:uncompressedSize:path:)``, which
/// validates it before a ``SeekableReader`` uses it.
///
/// ```swift
/// let info = try reader.finish()
/// let blob = info.seekTable.serialized()            // into the index
/// let table = try blob.withUnsafeBytes {
///     try SeekTable(decoding: $0, format: .gzip, compressedSize: info.compressedSize,
///                   uncompressedSize: info.uncompressedSize, path: path)
/// }
/// ```
public struct SeekTable: Sendable, Equatable {
    /// The default distance in uncompressed bytes between gzip checkpoints: 1 MiB.
    public static let defaultSpan: Int64 = 1 << 20

    /// The format the points are for.
    public let format: CompressionFormat
    /// The compressed shard's size in bytes.
    public let compressedSize: Int64
    /// The uncompressed data's size in bytes.
    public let uncompressedSize: Int64
    /// The points, in increasing compressed and uncompressed offsets.
    let points: [SeekPoint]

    init(format: CompressionFormat, compressedSize: Int64, uncompressedSize: Int64, points: [SeekPoint]) {
        self.format = format
        self.compressedSize = compressedSize
        self.uncompressedSize = uncompressedSize
        self.points = points
    }

    /// The number of entry points.
    public var pointCount: Int { points.count }

    /// Whether ``SeekableReader`` can read this shard (gzip: always; zstd and xz: more than one
    /// frame or block).
    public var isSeekable: Bool {
        switch format {
        case .gzip: !points.isEmpty
        case .zstd, .xz: points.count > 1
        case .none, .bzip2: false
        }
    }

    /// The index of the last point at or before uncompressed byte `offset`.
    ///
    /// - Complexity: O(log points).
    func pointIndex(atOrBefore offset: Int64) -> Int {
        var low = 0
        var high = points.count
        while high - low > 1 {
            let middle = (low + high) / 2
            if points[middle].uncompressedOffset <= offset { low = middle } else { high = middle }
        }
        return low
    }
}

/// One entry point of a compressed shard.
struct SeekPoint: Sendable, Equatable {
    /// The compressed offset where decoding resumes (gzip: the byte after the partial one).
    var compressedOffset: Int64
    /// The uncompressed offset of the first byte decoded from there.
    var uncompressedOffset: Int64
    /// gzip: the start of a member (decoding resumes in gzip mode, no window).
    var isMemberStart = false
    /// gzip: how many bits of the byte before `compressedOffset` are still to be decoded (0–7).
    var bits: UInt8 = 0
    /// gzip: that byte, when `bits` > 0.
    var partialByte: UInt8 = 0
    /// gzip: the window's length once inflated (at most 32 KiB).
    var windowLength = 0
    /// gzip: the window as stored: zlib-deflated when `windowIsDeflated`, else as is.
    var storedWindow: [UInt8] = []
    var windowIsDeflated = false
    /// xz: the block's check type (the stream flags' check).
    var check: UInt8 = 0

    /// The window, inflated.
    func window() -> [UInt8] {
        guard windowIsDeflated else { return storedWindow }
        // Validated when the table was decoded or built, so this cannot fail.
        return Zlib.uncompress(storedWindow, length: windowLength)!
    }
}

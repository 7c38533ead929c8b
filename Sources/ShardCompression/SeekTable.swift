import CShardZstd
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
    /// gzip: the window as stored, coded as `windowCoding` says.
    var storedWindow: [UInt8] = []
    var windowCoding = WindowCoding.raw
    /// xz: the block's check type (the stream flags' check).
    var check: UInt8 = 0

    /// How a gzip point's window is stored.
    enum WindowCoding: Sendable, Equatable {
        /// As is.
        case raw
        /// A zlib stream (tables of version 1).
        case deflate
        /// A zstd frame (version 2 on): compressing and decompressing it is several times
        /// faster than deflate, which took about 8% of a .tar.gz ingest's time at level 1.
        case zstd
    }

    /// The window, decompressed.
    func window() -> [UInt8] {
        // Validated when the table was decoded or built, so this cannot fail.
        switch windowCoding {
        case .raw: return storedWindow
        case .deflate: return Zlib.uncompress(storedWindow, length: windowLength)!
        case .zstd: return WindowCompressor.decompress(storedWindow, length: windowLength)!
        }
    }
}

/// Compresses gzip seek points' windows as zstd frames (level 1, with the content checksum, so a
/// damaged window is refused as a damaged deflated one is by its Adler-32), with one context
/// reused for every window of a shard. Owned by one decoder; not `Sendable`.
final class WindowCompressor {
    private let context: OpaquePointer

    init() {
        guard let context = ZSTD_createCCtx() else { preconditionFailure("ZSTD_createCCtx: out of memory") }
        self.context = context
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 1)
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// `window` as one zstd frame, or nil when that is not smaller.
    func compress(_ window: UnsafeRawBufferPointer) -> [UInt8]? {
        guard window.count > 0 else { return nil }
        let bound = ZSTD_compressBound(window.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(context, dst.baseAddress, bound, window.baseAddress, window.count)
        }
        guard ZSTD_isError(n) == 0, n < window.count else { return nil }
        out.removeSubrange(n...)
        return out
    }

    /// The zstd frame `frame` decompressed, when it holds exactly `length` bytes; else nil.
    static func decompress(_ frame: [UInt8], length: Int) -> [UInt8]? {
        guard length > 0, !frame.isEmpty else { return nil }
        // The frame states its content size; anything else than `length` is refused before
        // allocating.
        let stated = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard stated == UInt64(length) else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let n = out.withUnsafeMutableBytes { dst in
            frame.withUnsafeBytes { src in ZSTD_decompress(dst.baseAddress, length, src.baseAddress, src.count) }
        }
        guard ZSTD_isError(n) == 0, n == length else { return nil }
        return out
    }
}

import ShardCompression
import ShardCore
import ShardIO
import ShardIndex

/// One shard's whole tar: a compressed shard decompressed into RAM, or a copy in a file of a
/// cache folder (decompressed, or downloaded from remote storage).
final class WholeShard: @unchecked Sendable {
    private let allocation: UnsafeMutableRawBufferPointer?
    /// The tar's bytes in RAM, or nil.
    private let bytes: UnsafeRawBufferPointer?
    /// The tar as a file of a ``ShardCacheFolder``, or nil.
    let file: ReadOnlyFile?

    /// The bytes it holds in RAM.
    var residentBytes: Int64 { Int64(bytes?.count ?? 0) }

    /// A copy in a cache folder's file.
    init(file: ReadOnlyFile) {
        allocation = nil
        bytes = nil
        self.file = file
    }

    /// Decompresses `shard` from `source` front to back into RAM, checking every stream's trailer.
    ///
    /// - Throws: ``CompressedShardError``.
    init(_ shard: CompressedShards.Shard, _ source: CompressedSource) throws {
        let size = shard.record.uncompressedSize!
        guard size >= 0, size <= Int64(Int.max) else {
            throw CompressedShardError(
                path: shard.record.path, detail: "an uncompressed size of \(size) bytes does not fit in memory",
                isSeekTable: false)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(Int(size), 1), alignment: 64)
        do {
            var at = 0
            try Self.decompressWhole(shard, source) { piece in
                UnsafeMutableRawBufferPointer(rebasing: buffer[at..<(at + piece.count)]).copyMemory(from: piece)
                at += piece.count
            }
        } catch {
            buffer.deallocate()
            throw error
        }
        allocation = buffer
        bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<Int(size)])
        self.file = nil
    }

    deinit { allocation?.deallocate() }

    /// Decompresses `shard` from `source` front to back, handing `sink` its tar in pieces, and
    /// checks every stream's trailer and that the tar has the size the index recorded.
    ///
    /// - Throws: ``CompressedShardError`` for data that does not decompress or has another size;
    ///   what `sink` throws.
    /// - Complexity: O(shard), one pass; memory for the decompressor's window only.
    static func decompressWhole(
        _ shard: CompressedShards.Shard, _ source: CompressedSource, _ sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let size = shard.record.uncompressedSize!
        let info: CompressedShardInfo
        do {
            let stream = try DecompressingReader(source: source, format: shard.format)
            try stream.forEachPiece(offset: 0, count: size, sink)
            info = try stream.finish()
        } catch let error as DecompressionError {
            throw CompressedShardError(shard: shard, error)
        }
        guard info.uncompressedSize == size else {
            throw CompressedShardError(
                path: shard.record.path,
                detail: "the shard decompresses to \(info.uncompressedSize) bytes, but the index recorded \(size)",
                isSeekTable: false)
        }
    }

    /// Copies up to `buffer.count` bytes at `offset`; fewer only at the end.
    ///
    /// - Throws: `IOError` when reading a folder copy fails.
    func copy(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        if let file { return try file.readAll(into: buffer, at: offset) }
        let bytes = bytes!
        guard offset >= 0, offset < Int64(bytes.count), !buffer.isEmpty else { return 0 }
        let n = min(buffer.count, bytes.count - Int(offset))
        buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + Int(offset), byteCount: n)
        return n
    }
}

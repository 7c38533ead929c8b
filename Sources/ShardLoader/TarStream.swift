import ShardCompression
import ShardCore
import ShardIO
import ShardRemote

/// A shard's tar bytes read front to back: the file itself (`SequentialReader`) or, for a
/// compressed shard, its decompressed stream (`DecompressingReader`). Ranges come in increasing
/// offset order; what lies between them is skipped (read past, for a stream).
package protocol TarStream: RandomAccessBytes {
    /// Calls `body` with the `count` tar bytes at `offset`, in consecutive pieces.
    ///
    /// - Throws: `IOError` or `DecompressionError` when a read fails or the tar ends before
    ///   `offset + count`, or what `body` throws.
    func forEachPiece(offset: Int64, count: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws

    /// Bytes read from the file so far (compressed bytes, for a stream).
    var bytesRead: Int64 { get }
}

extension SequentialReader: TarStream {}

extension DecompressingReader: TarStream {
    package var bytesRead: Int64 { compressedBytesRead }
}

extension RemoteStream: TarStream {
    package var bytesRead: Int64 { bytesReceived }
}

/// The compression of `file`, from its first bytes (magic numbers, never the name).
///
/// ```swift
/// let format = try detectCompression(try ReadOnlyFile(path: "shard-000000.tar.gz"))  // .gzip
/// ```
///
/// - Throws: `IOError` when the read fails.
/// - Complexity: one `pread` of a few bytes.
package func detectCompression(_ file: ReadOnlyFile) throws(IOError) -> CompressionFormat {
    let prefix = UnsafeMutableRawBufferPointer.allocate(byteCount: CompressionFormat.detectionBytes, alignment: 8)
    defer { prefix.deallocate() }
    let n = try file.readAll(into: prefix, at: 0)
    return CompressionFormat.detect(UnsafeRawBufferPointer(rebasing: prefix[0..<n]))
}

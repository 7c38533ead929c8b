import ShardCore
import ShardIO

/// The compressed bytes of one shard as the decoders read them: a local file through `pread`, or
/// a remote object through range requests, with the name errors give it (a path or a URL).
///
/// ```swift
/// let local = CompressedSource(try ReadOnlyFile(path: "shard-000001.tar.gz"))
/// let reader = try DecompressingReader(source: local, format: .gzip)
/// // A remote object: reads are range GETs, asked for in chunks of a MiB.
/// let remote = CompressedSource(objectBytes, path: url, chunkSize: 1 << 20)
/// ```
///
/// Shared between threads when `bytes` is (a ``ReadOnlyFile`` is, and so is a remote object's
/// range reader); a forward-only source (an ingest's stream) is read by one decoder.
public struct CompressedSource: @unchecked Sendable {
    /// The bytes, read at any offset; a read returns fewer bytes than asked only at the end.
    public let bytes: any RandomAccessBytes
    /// The shard's name in messages.
    public let path: String
    /// The size at open: nothing at or after it is read.
    public let byteCount: Int64
    /// How many compressed bytes to ask for at a time, at least (nil: the reader's default), so
    /// that a source that pays per request (a range GET) is asked in large pieces.
    public let chunkSize: Int?

    /// A source over `bytes`, named `path` in errors.
    public init(_ bytes: any RandomAccessBytes, path: String, chunkSize: Int? = nil) {
        self.bytes = bytes
        self.path = path
        byteCount = bytes.byteCount
        self.chunkSize = chunkSize.map { max($0, 4 << 10) }
    }

    /// A local file.
    public init(_ file: ReadOnlyFile) {
        self.init(file, path: file.path)
    }

    /// Copies up to `buffer.count` bytes at `offset`; fewer only at the end.
    ///
    /// - Throws: what the source throws (`IOError` for a file).
    func readAll(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard !buffer.isEmpty, offset < byteCount else { return 0 }
        let wanted = UnsafeMutableRawBufferPointer(
            rebasing: buffer[0..<Int(min(Int64(buffer.count), byteCount - offset))])
        return try bytes.read(into: wanted, at: offset)
    }

    /// Exactly `count` bytes at `offset`.
    ///
    /// - Throws: what the source throws, or ``SourceEnded`` when it ends first.
    func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var failure: (any Error)?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do {
                initialized = try readAll(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        guard bytes.count == count else { throw SourceEnded(offset: offset + Int64(bytes.count)) }
        return bytes
    }

    /// A source that ended before the bytes asked for.
    struct SourceEnded: Error, CustomStringConvertible {
        let offset: Int64
        var description: String { "the data ends at byte \(offset)" }
    }
}

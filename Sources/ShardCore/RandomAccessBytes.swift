/// A byte source that can be read at any offset: a file through `pread`, a mapped shard, or an
/// array in a test.
///
/// The tar scanner reads headers through this protocol, so it needs no Foundation and no syscalls.
///
/// ```swift
/// let source = InMemoryBytes(bytes)
/// var scanner = TarScanner(source)
/// ```
public protocol RandomAccessBytes {
    /// The number of bytes in the source.
    var byteCount: Int64 { get }

    /// Reads up to `buffer.count` bytes starting at `offset` into `buffer`.
    ///
    /// Returns the number of bytes read, which is smaller than `buffer.count` only when the end of
    /// the source is reached. Implementations loop over short reads and retry on `EINTR`.
    ///
    /// - Throws: an error of the implementation's choice when the read itself fails (an I/O error).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int
}

/// A `RandomAccessBytes` over an array held in memory.
///
/// - Complexity: reads are O(n) in the bytes copied.
public struct InMemoryBytes: RandomAccessBytes, Sendable {
    /// The bytes.
    public let bytes: [UInt8]

    /// Wraps `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var byteCount: Int64 { Int64(bytes.count) }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0, offset < Int64(bytes.count) else { return 0 }
        let start = Int(offset)
        let n = min(buffer.count, bytes.count - start)
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + start, byteCount: n)
        }
        return n
    }
}

/// Why a compressed shard could not be read: which shard, which format, the compressed byte
/// offset where it failed, and what failed. Its ``description`` is one line that also says what
/// to do.
///
/// ```swift
/// // shard-000001.tar.gz: gzip data is corrupt at compressed byte 123456 (invalid distance too
/// // far back); the file is damaged: fetch or compress it again
/// ```
public struct DecompressionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed.
    public enum Kind: Sendable, Equatable {
        /// The library refused the data; its reason (bad header, CRC mismatch, ...).
        case corrupt(String)
        /// The compressed data ends inside a stream.
        case truncated
        /// Bytes after the last stream that are neither zero padding (gzip) nor a valid next
        /// stream or frame.
        case trailingGarbage
        /// A read asked for uncompressed bytes up to `needed`, beyond the end of the data at `end`.
        case endsEarly(needed: Int64, end: Int64)
        /// A read of the compressed file failed (the IOError's text).
        case io(String)
        /// Stored seek data failed validation (what was wrong).
        case badSeekTable(String)
        /// A forward-only reader was asked for uncompressed byte `offset`, which lies before the
        /// bytes it still holds (from `windowStart`).
        case behindWindow(offset: Int64, windowStart: Int64)
    }

    /// The shard's format.
    public let format: CompressionFormat
    /// The shard's path.
    public let path: String
    /// The compressed byte offset where reading failed.
    public let compressedOffset: Int64
    /// What failed.
    public let kind: Kind

    /// Makes an error.
    public init(format: CompressionFormat, path: String, compressedOffset: Int64, kind: Kind) {
        self.format = format
        self.path = path
        self.compressedOffset = compressedOffset
        self.kind = kind
    }

    /// One line: the shard, the format, the compressed offset, what failed, what to do.
    public var description: String {
        let at = "at compressed byte \(compressedOffset)"
        let damaged = "the file is damaged: fetch or compress it again"
        switch kind {
        case .corrupt(let reason):
            return "\(path): \(format.name) data is corrupt \(at) (\(reason)); \(damaged)"
        case .truncated:
            return "\(path): \(format.name) data is truncated: the file ends \(at) inside a stream; \(damaged)"
        case .trailingGarbage:
            return "\(path): unexpected bytes after the last \(format.name) stream \(at); \(damaged)"
        case .endsEarly(let needed, let end):
            return
                "\(path): \(format.name) data ends at uncompressed byte \(end) (\(at)), \(needed) needed; "
                + "the shard changed since it was indexed: ingest it again"
        case .io(let text):
            return "\(path): reading \(format.name) data failed \(at): \(text)"
        case .badSeekTable(let reason):
            return
                "\(path): the stored \(format.name) seek table is invalid (\(reason)); "
                + "ingest the shard again to rebuild it"
        case .behindWindow(let offset, let windowStart):
            return
                "\(path): \(format.name) forward reader asked for uncompressed byte \(offset), "
                + "behind what it holds (from \(windowStart)) \(at); read in increasing offsets or use SeekableReader"
        }
    }
}

/// A tar archive that cannot be read, with the byte offset where reading failed.
///
/// The message names the problem and the offset; callers that know the shard's path prefix it (see
/// `ShardIngest`). `description` is one sentence without the path.
public struct TarError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Compression formats recognised by their magic bytes.
    public enum Compression: String, Sendable, Equatable {
        case gzip, bzip2, xz, zstd
    }

    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// The file has no bytes at all.
        case empty
        /// The first block is not a tar header (bad checksum and no tar magic).
        case notATar
        /// The file starts with a compression format's magic bytes.
        case compressed(Compression)
        /// A header block's checksum does not match its contents.
        case badChecksum(stored: Int64, computed: Int64)
        /// The file ends inside a header block, inside pax or GNU long-name data, or right after
        /// pax or GNU long-name headers that announce an entry that is missing.
        case truncatedHeader(fileSize: Int64)
        /// The file ends inside a member's data: `needed` is the offset the data would end at.
        /// The error's offset is the entry's first header block.
        case truncatedMember(needed: Int64, fileSize: Int64)
        /// A numeric field (size, checksum) holds something that is not octal or base-256, a
        /// negative size, or a size whose end does not fit in 64 bits.
        case badNumericField(field: String)
        /// A pax extended header record is malformed.
        case badPaxRecord(String)
        /// A GNU long name (`L` entry) longer than the reader accepts: `size` bytes, over `limit`.
        case longNameTooLong(size: Int64, limit: Int64)
        /// The underlying read failed.
        case io(String)
    }

    /// What went wrong.
    public var kind: Kind
    /// The byte offset in the archive of the block or member where reading failed.
    public var offset: Int64

    public init(_ kind: Kind, at offset: Int64) {
        self.kind = kind
        self.offset = offset
    }

    public var description: String {
        switch kind {
        case .empty:
            return "empty file (0 bytes), not a tar archive"
        case .notATar:
            return "not a tar archive: no valid tar header at offset \(offset)"
        case .compressed(let c):
            return
                "\(c.rawValue)-compressed data at offset \(offset) where a tar header should be (a file compressed twice, or damaged); check it with `\(c.decompressCommand) FILE | tar -tvf -`"
        case .badChecksum(let stored, let computed):
            return
                "tar header checksum mismatch at offset \(offset) (stored \(stored), computed \(computed))"
        case .truncatedHeader(let fileSize):
            return "truncated tar header at offset \(offset) (file ends at \(fileSize))"
        case .truncatedMember(let needed, let fileSize):
            return
                "truncated member at offset \(offset): its data ends at \(needed) but the file ends at \(fileSize)"
        case .badNumericField(let field):
            return "invalid numeric \(field) field in the tar header at offset \(offset)"
        case .badPaxRecord(let detail):
            return "malformed pax extended header at offset \(offset): \(detail)"
        case .longNameTooLong(let size, let limit):
            return
                "the GNU long name at offset \(offset) is \(size) bytes, over the \(limit >> 20) MiB (\(limit) bytes) this reader accepts for a member name"
        case .io(let detail):
            return "read failed at offset \(offset): \(detail)"
        }
    }
}

extension TarError.Compression {
    /// A command that writes the decompressed bytes of a file to stdout, for error messages.
    public var decompressCommand: String {
        switch self {
        case .gzip: return "gzip -dc"
        case .bzip2: return "bzip2 -dc"
        case .xz: return "xz -dc"
        case .zstd: return "zstd -dc"
        }
    }
}

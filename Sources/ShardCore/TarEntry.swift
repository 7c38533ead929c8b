/// One entry of a tar archive, as the scanner reports it after applying GNU long names and pax
/// records.
///
/// Offsets are absolute byte offsets in the archive, always 64-bit.
public struct TarEntry: Sendable, Equatable {
    /// What the entry is.
    public enum Kind: Sendable, Equatable {
        /// A regular file (typeflag `0`, NUL, or `7` contiguous file): the only kind that becomes a
        /// sample member.
        case regular
        case directory
        case symlink
        case hardLink
        case characterDevice
        case blockDevice
        case fifo
        /// A GNU sparse file (typeflag `S`, or pax `GNU.sparse.*` records): its stored bytes are not
        /// the file's contents, so it is never a member.
        case sparse
        /// A GNU volume label (typeflag `V`).
        case volumeLabel
        /// Any other typeflag (GNU `D` dumpdir, `M` multi-volume continuation, vendor letters).
        case other(UInt8)
    }

    /// The entry's name as raw bytes: pax `path`, else GNU long name, else ustar `prefix/name`.
    /// No Unicode normalisation and no decoding: names are bytes.
    public var name: [UInt8]
    /// What the entry is.
    public var kind: Kind
    /// Offset of the entry's first header block: the first pax or GNU long-name block when the
    /// entry has them, otherwise its ustar header.
    public var headerOffset: Int64
    /// Offset of the first data byte: just after the entry's own ustar header (and after the
    /// extension blocks of a GNU old sparse header).
    public var dataOffset: Int64
    /// Number of data bytes stored in the archive: pax `size` when present, else the header's
    /// size field; 0 for kinds that carry no data (links, devices, directories, fifos), whatever
    /// the size field says. For sparse entries, the stored bytes, not the file's real size.
    public var size: Int64

    /// Makes an entry from its parts (the scanner makes them; tests write them down).
    public init(name: [UInt8], kind: Kind, headerOffset: Int64, dataOffset: Int64, size: Int64) {
        self.name = name
        self.kind = kind
        self.headerOffset = headerOffset
        self.dataOffset = dataOffset
        self.size = size
    }
}

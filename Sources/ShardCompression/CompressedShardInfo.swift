/// What a full pass over a compressed shard learned: its sizes and where it can be entered.
///
/// ```swift
/// let info = try reader.finish()
/// // info.uncompressedSize, info.seekTable.serialized() go into the index
/// ```
public struct CompressedShardInfo: Sendable, Equatable {
    /// The shard's format.
    public let format: CompressionFormat
    /// The compressed file's size in bytes.
    public let compressedSize: Int64
    /// The uncompressed data's size in bytes.
    public let uncompressedSize: Int64
    /// Where the shard can be entered (empty when it cannot).
    public let seekTable: SeekTable

    /// Makes the info from a seek table (as decoded from the index), whose sizes it takes.
    ///
    /// ```swift
    /// let info = CompressedShardInfo(seekTable: try SeekTable(decoding: blob, ...))
    /// ```
    public init(seekTable: SeekTable) {
        format = seekTable.format
        compressedSize = seekTable.compressedSize
        uncompressedSize = seekTable.uncompressedSize
        self.seekTable = seekTable
    }
}

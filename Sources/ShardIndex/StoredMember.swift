import ShardCore

/// One member row as stored, with its sample's key and its recorded checksum: what
/// `shardstore verify` checks and what `ingest --checksums` fills in.
///
/// Values are as the index holds them, unchecked: a damaged row may hold a negative length, an
/// offset that is not block-aligned, a checksum that is not a 32-bit value or a sample that does
/// not exist (``key`` nil). Validate before use.
public struct StoredMember: Sendable, Equatable {
    /// The sample's row id.
    public var sampleID: Int64
    /// The sample's key; nil when the row names a sample the `samples` table lacks.
    public var key: SampleKey?
    /// The extension as stored (lower-cased at ingest).
    public var ext: String
    /// Where the row says the member is.
    public var location: MemberLocation
    /// The CRC-32C recorded at ingest (`ingest --checksums`) as stored, or nil when none was.
    public var crc32c: Int64?

    public init(sampleID: Int64, key: SampleKey?, ext: String, location: MemberLocation, crc32c: Int64?) {
        self.sampleID = sampleID
        self.key = key
        self.ext = ext
        self.location = location
        self.crc32c = crc32c
    }
}

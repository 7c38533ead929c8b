import ShardCore

/// A shard as recorded in the index.
public struct ShardRecord: Sendable, Equatable {
    /// Row id; also the shard's ingest order.
    public var id: Int64
    /// The path as stored: relative to the index file's folder when below it, else absolute.
    public var path: String
    /// Size in bytes at ingest.
    public var size: Int64
    /// Modification time (ns since the epoch) at ingest.
    public var modificationTimeNanoseconds: Int64
    /// Regular-file members indexed from this shard.
    public var memberCount: Int
    /// Entries of the shard that are not members.
    public var skippedCount: Int
    /// `none`, or the format of a compressed shard: `gzip`, `zstd`, `xz`, `bzip2` (found from
    /// its magic bytes at ingest).
    public var compression: String
    /// The uncompressed tar's size in bytes; nil for an uncompressed shard (``size`` is the tar's).
    /// Member offsets are offsets into the uncompressed tar.
    public var uncompressedSize: Int64?
    /// A remote shard's ETag as its server sent it (quotes included); nil for a local shard, or
    /// when the server sends none. Reads send it as `If-Match`.
    public var etag: String?
    /// A remote shard's Last-Modified as its server wrote it; nil for a local shard.
    public var lastModified: String?

    public init(
        id: Int64, path: String, size: Int64, modificationTimeNanoseconds: Int64, memberCount: Int,
        skippedCount: Int, compression: String = "none", uncompressedSize: Int64? = nil, etag: String? = nil,
        lastModified: String? = nil
    ) {
        self.id = id
        self.path = path
        self.size = size
        self.modificationTimeNanoseconds = modificationTimeNanoseconds
        self.memberCount = memberCount
        self.skippedCount = skippedCount
        self.compression = compression
        self.uncompressedSize = uncompressedSize
        self.etag = etag
        self.lastModified = lastModified
    }

    /// Whether the shard is compressed (its bytes are read through a decompressor).
    public var isCompressed: Bool { compression != "none" }

    /// The size of the tar the member offsets refer to: ``uncompressedSize`` for a compressed
    /// shard, else ``size``.
    public var tarSize: Int64 { uncompressedSize ?? size }
}

/// Where a compressed shard can be entered, as stored in the index (`seek_tables`): the bytes of
/// ShardCompression's `SeekTable`, validated by whoever decodes them.
public struct StoredSeekTable: Sendable, Equatable {
    /// The shard's row id.
    public var shardID: Int64
    /// Seek points (0: the shard can only be read front to back).
    public var pointCount: Int
    /// The serialized table.
    public var data: [UInt8]

    public init(shardID: Int64, pointCount: Int, data: [UInt8]) {
        self.shardID = shardID
        self.pointCount = pointCount
        self.data = data
    }
}

/// Where one member's bytes are: shard, offsets, length. 64-bit throughout.
public struct MemberLocation: Sendable, Equatable, Hashable {
    /// The shard's row id (see ``ShardRecord/id``).
    public var shardID: Int64
    /// Offset of the member's first header block.
    public var headerOffset: Int64
    /// Offset of the first data byte.
    public var dataOffset: Int64
    /// Number of data bytes.
    public var length: Int64

    public init(shardID: Int64, headerOffset: Int64, dataOffset: Int64, length: Int64) {
        self.shardID = shardID
        self.headerOffset = headerOffset
        self.dataOffset = dataOffset
        self.length = length
    }
}

/// A member of a sample: its extension and location.
public struct MemberRecord: Sendable, Equatable {
    /// The extension, lower-cased, without the leading dot (`jpg`, `seg.png`).
    public var ext: String
    /// Where its bytes are.
    public var location: MemberLocation

    public init(ext: String, location: MemberLocation) {
        self.ext = ext
        self.location = location
    }
}

/// A sample as recorded in the index.
public struct SampleRecord: Sendable, Equatable {
    /// Row id: equal to ``index``, the dense global index.
    public var id: Int64
    /// The dense global index.
    public var index: Int
    /// The key.
    public var key: SampleKey
    /// The split the sample belongs to, if any.
    public var split: String?
    /// The members, sorted by extension.
    public var members: [MemberRecord]

    public init(id: Int64, index: Int, key: SampleKey, split: String?, members: [MemberRecord]) {
        self.id = id
        self.index = index
        self.key = key
        self.split = split
        self.members = members
    }

    /// The member with extension `ext`, if any.
    public func member(_ ext: String) -> MemberRecord? { members.first { $0.ext == ext } }
}

/// A split's name, size and how it was defined.
public struct SplitSummary: Sendable, Equatable {
    public var name: String
    /// Samples in the split.
    public var count: Int
    /// How the split was assigned, as JSON text.
    public var definition: String
    /// When the split was created (UTC, ISO 8601).
    public var createdAt: String
}

/// Counts for `shardstore info`.
public struct IndexSummary: Sendable, Equatable {
    public struct ExtensionCount: Sendable, Equatable {
        public var ext: String
        public var members: Int
        public var bytes: Int64
    }
    public var schemaVersion: Int
    public var samples: Int
    public var members: Int
    public var shards: Int
    /// Bytes of all shard files.
    public var shardBytes: Int64
    /// Bytes of all member data.
    public var memberBytes: Int64
    public var extensions: [ExtensionCount]
    public var splits: [SplitSummary]
    /// Samples in no split.
    public var unassigned: Int
    /// Metadata entries (key, JSON value), sorted by key.
    public var metadata: [(key: String, value: String)]

    public static func == (a: IndexSummary, b: IndexSummary) -> Bool {
        a.schemaVersion == b.schemaVersion && a.samples == b.samples && a.members == b.members
            && a.shards == b.shards && a.shardBytes == b.shardBytes && a.memberBytes == b.memberBytes
            && a.extensions == b.extensions && a.splits == b.splits && a.unassigned == b.unassigned
            && a.metadata.map(\.key) == b.metadata.map(\.key) && a.metadata.map(\.value) == b.metadata.map(\.value)
    }
}

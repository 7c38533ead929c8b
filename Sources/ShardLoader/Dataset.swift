import ShardCore
import ShardIO
import ShardIndex

/// A sample with its members' bytes.
public struct Sample: Sendable {
    /// Where the sample is in the index (key, global index, split, member locations).
    public var record: SampleRecord
    /// Each member's bytes by extension.
    public var members: [String: [UInt8]]

    /// The key.
    public var key: SampleKey { record.key }
    /// The dense global index.
    public var index: Int { record.index }
    /// The bytes of the member with extension `ext`.
    public subscript(ext: String) -> [UInt8]? { members[ext] }
}

/// A map-style dataset over an index: `count`, samples by position (in the whole dataset or in
/// one split) and by key, each sample's members as bytes.
///
/// One `Dataset` is for one thread at a time (it holds an SQLite connection); open one per thread.
///
/// ```swift
/// let train = try Dataset(index: "ds/index.sqlite", split: "train")
/// let sample = try train[0]
/// let jpeg = sample["jpg"]!
/// ```
public final class Dataset {
    /// The index queries go to.
    public let index: IndexReader
    /// Reads member bytes, checking shards against the index.
    public let reader: ShardReader
    /// The split this dataset is limited to, if any.
    public let split: String?
    /// The number of samples (in the split when one is set).
    public let count: Int

    /// Opens the index at `path`, optionally limited to split `split`.
    ///
    /// - Throws: `IndexError` (no such index or split), `SchemaError`, `SQLiteError`.
    /// - Complexity: O(shards).
    public init(index path: String, split: String? = nil) throws {
        let index = try IndexReader(path: path)
        self.index = index
        reader = try ShardReader(index: index)
        self.split = split
        count = try split.map { try index.sampleCount(inSplit: $0) } ?? index.sampleCount()
    }

    /// The sample at `position` (a global index, or a split position when a split is set).
    public subscript(position: Int) -> Sample {
        get throws { try sample(at: position) }
    }

    /// The sample at `position` (a global index, or a split position when a split is set).
    ///
    /// - Throws: `IndexError.indexOutOfRange`, `ShardChangedError`, `IOError`.
    /// - Complexity: two or three indexed lookups and one read per member.
    public func sample(at position: Int) throws -> Sample {
        try load(try record(at: position))
    }

    /// The sample's index record at `position`, without reading bytes.
    public func record(at position: Int) throws -> SampleRecord {
        if let split { return try index.sample(at: position, inSplit: split) }
        return try index.sample(at: position)
    }

    /// The sample with key `key`.
    ///
    /// - Throws: `IndexError.unknownKey`, `IndexError.ambiguousKey` (duplicates kept at ingest).
    public func sample(forKey key: SampleKey) throws -> Sample {
        try load(try index.sample(forKey: key))
    }

    /// The bytes of `member`.
    public func bytes(of member: MemberRecord) throws -> [UInt8] {
        try reader.bytes(of: member.location)
    }

    private func load(_ record: SampleRecord) throws -> Sample {
        var members: [String: [UInt8]] = [:]
        for m in record.members { members[m.ext] = try reader.bytes(of: m.location) }
        return Sample(record: record, members: members)
    }
}

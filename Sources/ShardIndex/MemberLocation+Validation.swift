import ShardCore

extension MemberLocation {
    /// What is wrong with a member row read from the index: the column and why.
    public struct Defect: Sendable, Equatable, CustomStringConvertible {
        /// The `members` column at fault (`data_offset`, `header_offset`, `length`, `shard_id`).
        public var field: String
        /// What its value breaks, with the value.
        public var detail: String

        public init(field: String, detail: String) {
            self.field = field
            self.detail = detail
        }

        public var description: String { "\(field) \(detail)" }
    }

    /// Checks the row against what ingest always writes, so that no damaged value reaches a read,
    /// an allocation or an integer conversion: both offsets are multiples of 512, the header
    /// comes at least one block before the data, the length is not negative and the member ends
    /// within the shard's size recorded at ingest (`shardSize`; nil when the row names a shard
    /// the index does not list).
    ///
    /// ```swift
    /// if let defect = member.location.defect(shardSize: shard?.size) {
    ///     throw IndexRowError(indexPath: path, sample: id, key: key, ext: member.ext, defect: defect)
    /// }
    /// ```
    ///
    /// - Returns: nil for a valid row, else the first defect found.
    /// - Complexity: O(1), no allocation for a valid row.
    public func defect(shardSize: Int64?) -> Defect? {
        guard let shardSize else {
            return Defect(field: "shard_id", detail: "\(shardID) names a shard the index does not list")
        }
        if dataOffset < 512 || dataOffset & 511 != 0 {
            return Defect(field: "data_offset", detail: "\(dataOffset) is not a positive multiple of 512")
        }
        if headerOffset < 0 || headerOffset & 511 != 0 {
            return Defect(field: "header_offset", detail: "\(headerOffset) is negative or not a multiple of 512")
        }
        if headerOffset > dataOffset - 512 {
            return Defect(
                field: "header_offset",
                detail: "\(headerOffset) is not at least one block before data_offset \(dataOffset)")
        }
        if length < 0 { return Defect(field: "length", detail: "\(length) is negative") }
        // `dataOffset` is positive and `shardSize` is not negative, so the subtraction cannot
        // overflow (a damaged, negative shard size would: it is past the end of any member).
        if shardSize < 0 || length > shardSize - dataOffset {
            return Defect(
                field: "length",
                detail:
                    "\(length) from data_offset \(dataOffset) ends past the shard's \(shardSize) bytes recorded at ingest"
            )
        }
        return nil
    }
}

/// A member row of the index that ingest cannot have written (an offset off the 512-byte grid, a
/// header after its data, a negative length, a member past the end of its shard, an unknown
/// shard): the index file is damaged. Raised when the row is loaded, before any byte is read.
///
/// ```swift
/// catch let error as IndexRowError { print(error) }
/// // index '/d/idx.sqlite' has a damaged member row (sample 3, key '000003', .jpg): length -5 is
/// // negative; run `shardstore ingest` again into a new index
/// ```
public struct IndexRowError: Error, Sendable, CustomStringConvertible {
    /// The index file's path.
    public var indexPath: String
    /// The sample's row id (its global index), when known.
    public var sample: Int64?
    /// The sample's key, when known.
    public var key: SampleKey?
    /// The member's extension.
    public var ext: String
    /// What is wrong.
    public var defect: MemberLocation.Defect

    public init(indexPath: String, sample: Int64?, key: SampleKey?, ext: String, defect: MemberLocation.Defect) {
        self.indexPath = indexPath
        self.sample = sample
        self.key = key
        self.ext = ext
        self.defect = defect
    }

    public var description: String {
        var place: [String] = []
        if let sample { place.append("sample \(sample)") }
        if let key { place.append("key \(MessageText.quoted(key.bytes))") }
        place.append(".\(MessageText.escaped(Array(ext.utf8)))")
        return
            "index '\(MessageText.escaped(Array(indexPath.utf8)))' has a damaged member row (\(place.joined(separator: ", "))): \(defect); run `shardstore ingest` again into a new index"
    }
}

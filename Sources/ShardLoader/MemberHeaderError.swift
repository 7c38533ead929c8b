import ShardCore
import ShardIndex

/// A member whose own tar header (the 512-byte block right before its data) does not match what
/// the index recorded for it: the shard was rewritten, swapped or moved since ingest while its
/// size and modification time stayed the same, or the index row was damaged. Every read checks
/// the header (``MemberHeaderCheck``) before handing out a byte, so wrong bytes are refused
/// instead of returned.
///
/// The message is one line (control bytes in the key are escaped):
///
/// ```text
/// shard '/d/a.tar' at byte offset 1536: the header there names '000002.jpg', the index expects
/// '000001.jpg' (key '000001', .jpg); the shard changed since ingest or the index is damaged:
/// run `shardstore ingest` again into a new index
/// ```
///
/// Ingesting into the same index would keep the row: it skips shards whose size and
/// modification time did not change, which is the case this error catches.
public struct MemberHeaderError: Error, Sendable, CustomStringConvertible {
    /// The shard's path as opened (resolved against the index's folder).
    public var shardPath: String
    /// Where the header block was read: the member's data offset minus 512.
    public var headerOffset: Int64
    /// The sample's key, as indexed.
    public var key: SampleKey
    /// The member's extension, as indexed (lower-case, without the dot).
    public var ext: String
    /// What differs.
    public var mismatch: MemberHeaderCheck.Mismatch

    public init(
        shardPath: String, headerOffset: Int64, key: SampleKey, ext: String, mismatch: MemberHeaderCheck.Mismatch
    ) {
        self.shardPath = shardPath
        self.headerOffset = headerOffset
        self.key = key
        self.ext = ext
        self.mismatch = mismatch
    }

    public var description: String {
        "shard '\(MessageText.escaped(Array(shardPath.utf8)))' at byte offset \(headerOffset): \(mismatch) (key \(MessageText.quoted(key.bytes)), .\(MessageText.escaped(Array(ext.utf8)))); the shard changed since ingest or the index is damaged: run `shardstore ingest` again into a new index"
    }

    /// Checks the header block at `header` (512 readable bytes) of the member `row` (data
    /// `length` bytes, its extension's name `ext`) of sample `key` in the shard at `shardPath`.
    ///
    /// - Throws: ``MemberHeaderError`` when the block is not the member's header.
    /// - Complexity: O(512 + name length); no allocation when it matches.
    @inline(__always)
    static func check(
        _ header: UnsafeRawPointer, _ row: PackedMember, length: Int, key: UnsafeRawBufferPointer, ext: String,
        shardPath: @autoclosure () -> String
    ) throws(MemberHeaderError) {
        let block = UnsafeRawBufferPointer(start: header, count: MemberHeaderCheck.blockSize)
        let mismatch: MemberHeaderCheck.Mismatch? =
            ext.utf8.withContiguousStorageIfAvailable { utf8 in
                MemberHeaderCheck.check(
                    block, length: Int64(length), key: key, ext: UnsafeRawBufferPointer(utf8), extended: row.isExtended)
            }
            ?? Array(ext.utf8).withUnsafeBytes {
                MemberHeaderCheck.check(block, length: Int64(length), key: key, ext: $0, extended: row.isExtended)
            }
        if let mismatch {
            throw MemberHeaderError(
                shardPath: shardPath(), headerOffset: row.offset - Int64(MemberHeaderCheck.blockSize),
                key: SampleKey(bytes: key), ext: ext, mismatch: mismatch)
        }
    }
}

import ShardCore
import ShardIndex

/// The index facts `shardstore_splits_json` and `shardstore_metadata_json` return, as JSON text.
/// Each call opens its own connection to the index (these are not hot paths), so it is fork-safe.
enum IndexJSON {
    /// `[{"name": "train", "count": 80}, ...]`, in name order.
    ///
    /// - Throws: what ``IndexReader/init(path:)`` and ``IndexReader/splits()`` throw.
    static func splits(index path: String) throws -> String {
        let splits = try IndexReader(path: path).splits()
        return "[" + splits.map { "{\"name\": \(JSON.quote($0.name)), \"count\": \($0.count)}" }.joined(separator: ", ")
            + "]"
    }

    /// `{"key": value, ...}` with each value the stored JSON text, in key order.
    ///
    /// - Throws: what ``IndexReader/init(path:)`` and ``IndexReader/metadata()`` throw.
    static func metadata(index path: String) throws -> String {
        let entries = try IndexReader(path: path).metadata()
        return "{" + entries.map { "\(JSON.quote($0.key)): \($0.value)" }.joined(separator: ", ") + "}"
    }
}

import ShardIO
import ShardIndex

/// The files an index is made of, which no output may replace: the index, its SQLite journal
/// (and `-wal`, `-shm`), its location file, and every shard it lists.
///
/// ```swift
/// let reader = try IndexReader(path: "ds/index.sqlite")
/// if let hit = ProtectedInput.overwritten(by: "ds/train-0.tar", inputs: try IndexFiles.all(index: "ds/index.sqlite", reader: reader)) {
///     print(hit.role)   // "a shard of the index"
/// }
/// ```
public enum IndexFiles {
    /// Every file of the index at `index` (open as `reader`), with its role.
    ///
    /// - Throws: `IOError` when the index's folder cannot be resolved, `SQLiteError`.
    /// - Complexity: O(shards).
    public static func all(index: String, reader: IndexReader) throws -> [ProtectedInput] {
        let directory = try Paths.real(Paths.directory(of: Paths.absolute(index)))
        var out = [
            ProtectedInput(path: index, role: "the index"),
            ProtectedInput(path: index + "-journal", role: "the index's journal"),
            ProtectedInput(path: index + "-wal", role: "the index's journal"),
            ProtectedInput(path: index + "-shm", role: "the index's journal"),
            ProtectedInput(path: LocationFile.path(forIndex: index), role: "the index's location file"),
        ]
        for shard in try reader.shards() {
            out.append(
                ProtectedInput(
                    path: Paths.resolveStoredShardPath(shard.path, indexDirectory: directory),
                    role: "a shard of the index"))
        }
        return out
    }
}

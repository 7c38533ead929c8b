import ShardCore
import ShardIO

/// A query the index cannot answer, or an index that cannot be used. Each message says what
/// failed and what to do.
public enum IndexError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No index file at the path.
    case indexNotFound(path: String)
    /// The path names a directory, not an index file.
    case indexIsDirectory(path: String)
    /// A global index or split position outside `0..<count`.
    case indexOutOfRange(index: Int, count: Int, split: String?)
    /// No sample has this key.
    case unknownKey(SampleKey)
    /// The key names a sample of the index, but not one in the split the dataset is limited to.
    case keyNotInSplit(SampleKey, split: String)
    /// Several samples share this key (ingested with `--on-duplicate keep`).
    case ambiguousKey(SampleKey, indexes: [Int])
    /// No split with this name.
    case unknownSplit(String, available: [String])
    /// The sample has no member with this extension.
    case unknownExtension(String, key: SampleKey, available: [String])
    /// A metadata key that is not set.
    case unknownMetadataKey(String)
    /// An argument the index rejects (bad ratio, reserved metadata key...).
    case invalidArgument(String)

    /// One line in the library API's words (``message(_:)`` in `.api` style): keys, names and
    /// extensions go through `MessageText.escaped`, so a key holding a line break stays on the line.
    public var description: String { message(.api) }

    /// The message, naming what to do in `style`: `.api` for a library caller, `.commandLine` for
    /// the CLI, whose options (`--index`, `shardstore ls --split`) a library caller does not have.
    ///
    /// ```swift
    /// IndexError.ambiguousKey(SampleKey("a"), indexes: [0, 1]).message(.commandLine)
    /// // "key 'a' names 2 samples (duplicates kept at ingest) at indexes 0, 1; select one by index with --index"
    /// ```
    ///
    /// - Complexity: O(message length).
    public func message(_ style: MessageStyle) -> String {
        switch self {
        case .indexNotFound(let path):
            return "index '\(path)' does not exist; create it with `shardstore ingest \(path) SHARD...`"
        case .indexIsDirectory(let path):
            let example = (path.hasSuffix("/") ? path : path + "/") + "index.sqlite"
            return "'\(path)' is a directory, not an index file; pass the index file's path, such as '\(example)'"
        case .indexOutOfRange(let index, let count, let split):
            let scope = split.map { "split '\(MessageText.escaped($0))'" } ?? "the dataset"
            if count == 0 { return "index \(index) is out of range: \(scope) has no samples" }
            return "index \(index) is out of range: \(scope) has \(count) samples (valid: 0 to \(count - 1))"
        case .unknownKey(let key):
            return "no sample has key '\(MessageText.escaped(key))'; `shardstore ls INDEX` lists the keys"
        case .keyNotInSplit(let key, let split):
            let problem =
                "sample '\(MessageText.escaped(key))' is not in split '\(MessageText.escaped(split))'; open the dataset without a split to read it"
            guard style == .commandLine else { return problem }
            return problem
                + ", or list the split's keys with `shardstore ls INDEX --split \(MessageText.escaped(split))`"
        case .ambiguousKey(let key, let indexes):
            let list = indexes.prefix(10).map(String.init).joined(separator: ", ")
            let problem =
                "key '\(MessageText.escaped(key))' names \(indexes.count) samples (duplicates kept at ingest) at indexes \(list)\(indexes.count > 10 ? ", ..." : ""); select one by index"
            return style == .commandLine ? problem + " with --index" : problem
        case .unknownSplit(let name, let available):
            let list =
                available.isEmpty
                ? "the index has no splits" : "splits: " + available.map(MessageText.escaped).joined(separator: ", ")
            return "no split named '\(MessageText.escaped(name))' (\(list))"
        case .unknownExtension(let ext, let key, let available):
            return
                "sample '\(MessageText.escaped(key))' has no member '.\(MessageText.escaped(ext))' (members: \(available.map { "." + MessageText.escaped($0) }.joined(separator: ", ")))"
        case .unknownMetadataKey(let key):
            return "no metadata entry '\(MessageText.escaped(key))'; `shardstore meta INDEX list` shows the entries"
        case .invalidArgument(let message):
            return message
        }
    }
}

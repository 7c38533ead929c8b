import ShardCore
import ShardIO
import ShardIndex

#if canImport(Glibc)
    import Glibc
#endif

/// Which samples a split assignment takes.
public enum SplitSelection: Sendable {
    /// Samples whose first member lies in a shard matching this glob or brace pattern (matched
    /// against the stored path, the full path and the file name).
    case shards(String)
    /// Samples with these keys (every sample of a key when duplicates were kept).
    case keys([SampleKey], source: String)
    /// The samples that are unassigned or in one of the named splits, shuffled with `seed`
    /// (SplitMix64) and cut by the ratios; the named splits are rebuilt from scratch.
    case ratios(SplitRatios, seed: UInt64)
}

/// A split assignment that cannot be made.
public struct SplitSelectionError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Edits splits in an existing index, each call one transaction.
///
/// ```swift
/// let result = try SplitEditor.assign(index: "ds/index.sqlite", split: nil,
///     selection: .ratios(try SplitRatios(parsing: "train=0.9,val=0.1"), seed: 0))
/// ```
public enum SplitEditor {
    /// Assigns samples to splits.
    ///
    /// - Parameters:
    ///   - split: the split name for `.shards` and `.keys` (ignored for `.ratios`, which names its
    ///     splits).
    /// - Returns: one assignment per split written.
    /// - Throws: ``SplitSelectionError`` when a pattern matches no shard or keys are missing;
    ///   `IndexError`, `SQLiteError`. The index is unchanged on error.
    public static func assign(index path: String, split: String?, selection: SplitSelection) throws
        -> [IndexWriter.SplitAssignment]
    {
        if case .ratios = selection {
        } else if split?.isEmpty ?? true {
            throw IndexError.invalidArgument("name the split to assign to (an empty or missing name is not a split)")
        }
        return try IndexEditing.withWriter(path) { writer in
            switch selection {
            case .shards(let pattern):
                let shards = try IndexReader(database: writer.database).shards()
                let directory = try Paths.real(Paths.directory(of: Paths.absolute(path)))
                let words = try BraceExpansion.expand(pattern)
                let matched = shards.filter { s in
                    let full = Paths.resolveStoredShardPath(s.path, indexDirectory: directory)
                    let candidates = [s.path, full, Paths.basename(of: s.path)]
                    return words.contains { w in candidates.contains(where: { c in fnmatch(w, c, 0) == 0 }) }
                }
                guard !matched.isEmpty else {
                    let some = shards.prefix(3).map { "'\($0.path)'" }.joined(separator: ", ")
                    throw SplitSelectionError(
                        description:
                            "no indexed shard matches '\(pattern)'; the pattern is matched against each shard's stored path, full path and file name (the index has \(shards.count) shard\(shards.count == 1 ? "" : "s")\(shards.isEmpty ? "" : ": " + some + (shards.count > 3 ? ", ..." : "")))"
                    )
                }
                let ids = try writer.sampleIDs(inShards: matched.map(\.id))
                let step = "{\"by\":\"shards\",\"pattern\":\(JSON.quote(pattern)),\"shards\":\(matched.count)}"
                return [try writer.assign(split: split ?? "", sampleIDs: ids, step: step)]
            case .keys(let keys, let source):
                let (ids, missing) = try writer.sampleIDs(forKeys: keys)
                if !missing.isEmpty {
                    let examples = missing.prefix(5).map { "'\(MessageText.escaped($0))'" }.joined(separator: ", ")
                    throw SplitSelectionError(
                        description:
                            "\(missing.count) of the \(keys.count) keys in \(source) are not in the index (\(examples)\(missing.count > 5 ? ", ..." : "")); fix the list and run the command again"
                    )
                }
                let step = "{\"by\":\"keys\",\"file\":\(JSON.quote(source)),\"keys\":\(keys.count)}"
                return [try writer.assign(split: split ?? "", sampleIDs: ids, step: step)]
            case .ratios(let ratios, let seed):
                let names = ratios.parts.map(\.name)
                var pool = try writer.sampleIDs(unassignedOrIn: names)
                for name in names where (try? IndexReader(database: writer.database).splitID(name)) != nil {
                    try writer.deleteSplit(name)
                }
                var rng = SplitMix64(seed: seed)
                pool.seededShuffle(using: &rng)
                let counts = ratios.counts(of: pool.count)
                var start = 0
                var out: [IndexWriter.SplitAssignment] = []
                for (part, count) in zip(ratios.parts, counts) {
                    let ids = Array(pool[start..<(start + count)])
                    start += count
                    let step = "{\"by\":\"ratio\",\"ratio\":\(part.ratio),\"of\":\(pool.count),\"seed\":\(seed)}"
                    out.append(try writer.assign(split: part.name, sampleIDs: ids, step: step))
                }
                return out
            }
        }
    }

    /// Deletes split `name` (its samples become unassigned).
    ///
    /// - Returns: how many samples it had.
    public static func delete(index path: String, split name: String) throws -> Int {
        try IndexEditing.withWriter(path) { try $0.deleteSplit(name) }
    }

    /// Reads a key list: one key per line (exact bytes; a trailing `\r` is dropped; empty lines are
    /// skipped).
    public static func readKeyFile(_ path: String) throws -> [SampleKey] {
        let file = try ReadOnlyFile(path: path)
        let bytes = try file.read(count: Int(file.byteCount), at: 0)
        return bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            var l = line
            if l.last == UInt8(ascii: "\r") { l = l.dropLast() }
            return l.isEmpty ? nil : SampleKey(bytes: l)
        }
    }
}

/// Edits dataset metadata in an existing index, each call one transaction.
public enum MetadataEditor {
    /// Sets `key` to `value`: stored as JSON when `value` parses as JSON (and `asString` is false),
    /// otherwise as a JSON string. Returns the stored JSON.
    ///
    /// - Throws: ``IndexError/invalidArgument(_:)`` for keys starting with `shardstore.`.
    @discardableResult
    public static func set(index path: String, key: String, value: String, asString: Bool = false) throws -> String {
        guard !key.hasPrefix(IndexWriter.reservedMetadataPrefix) else {
            throw IndexError.invalidArgument(
                "metadata keys starting with '\(IndexWriter.reservedMetadataPrefix)' are written by ShardStore itself; choose another key"
            )
        }
        guard !key.isEmpty else { throw IndexError.invalidArgument("a metadata key must not be empty") }
        return try IndexEditing.withWriter(path) { writer in
            let json = try writer.jsonValue(fromUserText: value, forceString: asString)
            try writer.setMetadata(key, json: json)
            return json
        }
    }

    /// Deletes `key`.
    ///
    /// - Throws: ``IndexError/unknownMetadataKey(_:)``.
    public static func delete(index path: String, key: String) throws {
        guard !key.hasPrefix(IndexWriter.reservedMetadataPrefix) else {
            throw IndexError.invalidArgument(
                "metadata keys starting with '\(IndexWriter.reservedMetadataPrefix)' are written by ShardStore itself and cannot be deleted"
            )
        }
        try IndexEditing.withWriter(path) { try $0.deleteMetadata(key) }
    }
}

enum IndexEditing {
    /// Opens the existing index at `path` for writing and runs `body` in one transaction.
    static func withWriter<T>(_ path: String, _ body: (IndexWriter) throws -> T) throws -> T {
        guard IndexFile.exists(path) else { throw IndexError.indexNotFound(path: path) }
        try IndexFile.checkNotDirectory(path)
        do {
            let db = try Database(path: path, mode: .readWrite)
            try IndexFile.migrator.migrate(db)
            let writer = try IndexWriter(database: db)
            return try db.inTransaction(.immediate) { try body(writer) }
        } catch let error as SQLiteError where error.code == .busy {
            throw IndexFile.busy(path)
        }
    }
}

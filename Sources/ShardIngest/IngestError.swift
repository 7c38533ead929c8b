import ShardCompression
import ShardCore
import ShardIO
import ShardRemote

/// Why an ingest stopped. Every case names the shard (and byte offset where there is one) and
/// what to do. When an ingest throws, the index is exactly as it was before.
public enum IngestError: Error, Sendable, CustomStringConvertible {
    /// The shard is not a readable tar (corrupt, truncated, empty, not a tar).
    case corruptShard(path: String, TarError)
    /// Where the tar should start (in the file, or in its decompressed stream) lies compressed
    /// data that is not a compressed shard ShardStore reads: a file compressed twice, or damaged.
    case compressedShard(path: String, openPath: String, TarError.Compression)
    /// The shard cannot be opened or read.
    case unreadableShard(IOError)
    /// A compressed shard's data is damaged, truncated or followed by garbage (the error names
    /// the shard and the compressed byte offset).
    case decompressionFailed(DecompressionError)
    /// The same (key, extension) twice under the `error` policy.
    case duplicateMember(
        key: SampleKey, ext: String, first: (path: String, offset: Int64), again: (path: String, offset: Int64))
    /// A member's extension is not valid UTF-8 (keys may be any bytes; extensions name columns and
    /// datasets, so they must be text).
    case extensionNotUTF8(path: String, offset: Int64, name: [UInt8])
    /// The folder the index file should go in does not exist.
    case indexFolderMissing(String)
    /// The shard arguments named no shard.
    case noShards
    /// The index cannot be written (a read-only file, folder or file system) and the ingest has
    /// something to write: shards that are new or changed, or a split to assign.
    case readOnlyIndex(path: String, changedShards: Int, split: String?)
    /// Ctrl-C or another cancellation.
    case cancelled
    /// A remote shard could not be listed, found or read (the error names the object and the
    /// request, never credentials, and what to check).
    case remoteFailed(RemoteError)
    /// A remote argument names no object: a pattern that matches nothing in its bucket, or a
    /// wildcard in an `http(s)` URL (web servers cannot be listed).
    case remoteNoMatch(pattern: String, reason: String)
    /// While recording the checksums of a shard indexed earlier (`--checksums`), a member's own
    /// header did not match its index row, though the shard's size and modification time did:
    /// the shard was rewritten in place. `member` is `key.ext` as a quoted one-line string.
    case shardDiffersFromIndex(path: String, index: String, offset: Int64, member: String, detail: String)

    public var description: String {
        switch self {
        case .corruptShard(let path, let error):
            return "shard '\(path)': \(error); re-fetch the shard or leave it out of the ingest"
        case .compressedShard(let path, let openPath, let c):
            return
                "shard '\(path)': where its tar should start there are \(c.rawValue)-compressed bytes that do not decompress as a shard (compressed twice, or damaged); check it with `\(c.decompressCommand) '\(openPath)' | tar -tvf -`, or leave it out of the ingest"
        case .unreadableShard(let error):
            return "\(error)"
        case .decompressionFailed(let error):
            return "\(error)"
        case .duplicateMember(let key, let ext, let first, let again):
            return
                "duplicate member '\(MessageText.escaped(key)).\(MessageText.escaped(ext))': first at '\(first.path)' offset \(first.offset), again at '\(again.path)' offset \(again.offset); choose what to do with --on-duplicate first|last|keep"
        case .extensionNotUTF8(let path, let offset, let name):
            return
                "shard '\(path)': the member at offset \(offset) ('\(MessageText.escaped(bytes: name))') has an extension that is not valid UTF-8; rename it in the tar, or leave the shard out of the ingest"
        case .indexFolderMissing(let folder):
            return "the index's folder '\(folder)' does not exist; create it first (mkdir -p '\(folder)')"
        case .noShards:
            return
                "no shards to ingest: name .tar files, globs ('data/*.tar') or brace ranges ('train-{000000..000099}.tar')"
        case .readOnlyIndex(let path, let changed, let split):
            var work: [String] = []
            if changed > 0 { work.append("\(changed) shard\(changed == 1 ? " is" : "s are") new or changed") }
            if let split { work.append("--split '\(MessageText.escaped(split))' assigns samples") }
            return
                "index '\(path)' is read-only (this process cannot write it or its folder) and this ingest would change it: \(work.joined(separator: ", and ")); make the index and its folder writable and run the ingest again"
        case .cancelled:
            return "ingest cancelled"
        case .remoteFailed(let error):
            return "\(error)"
        case .remoteNoMatch(let pattern, let reason):
            return "'\(MessageText.escaped(pattern))': \(reason)"
        case .shardDiffersFromIndex(let path, let index, let offset, let member, let detail):
            return
                "shard '\(path)' no longer matches the index at byte \(offset) (member \(member): \(detail)), though its size and modification time are those recorded at ingest; run `shardstore verify \(index)` to list every difference, then `touch` the shard and ingest it again"
        }
    }
}

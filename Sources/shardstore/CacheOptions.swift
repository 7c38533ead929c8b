import ArgumentParser
import ShardStore

#if canImport(Glibc)
    import Glibc
#endif

/// `--cache DIR` and `--cache-limit SIZE`: a folder of whole shard copies, into which remote
/// shards are downloaded once (and compressed shards that fit nowhere else decompressed), so that
/// repeated reads send no request.
struct CacheOptions: ParsableArguments {
    @Option(
        name: .customLong("cache"),
        help: ArgumentHelp(
            "A folder (it must exist) for whole copies of shards: each remote shard is downloaded into it on its first read and read from there after, by this and later runs; compressed shards too large for RAM are decompressed into it (also SHARDSTORE_CACHE_DIR).",
            valueName: "dir"))
    var directory: String?

    @Option(
        help: ArgumentHelp(
            "The most bytes of copies kept in the --cache folder, least recently used deleted first (16G when left out; also SHARDSTORE_CACHE_LIMIT). A remote shard larger than this is read by range requests.",
            valueName: "size"))
    var cacheLimit: String?

    func validate() throws {
        guard let cacheLimit else { return }
        if directory == nil, (getenv("SHARDSTORE_CACHE_DIR").map { String(cString: $0) } ?? "").isEmpty {
            throw ValidationError("--cache-limit goes with --cache DIR (or SHARDSTORE_CACHE_DIR).")
        }
        do { _ = try MemoryProbe.parseSize(cacheLimit) } catch {
            throw ValidationError(
                "Please give --cache-limit a size such as 50G or a byte count: \(error.problem), in '\(cacheLimit)'.")
        }
    }

    /// The limit in bytes, or nil when none is given.
    func limit() throws -> Int64? { try cacheLimit.map { try MemoryProbe.parseSize($0) } }

    /// Sets `options`' cache folder and limit from the flags (left as they are when not given).
    func apply(to options: inout Dataset.Options) throws {
        if let directory { options.cacheDirectory = directory }
        if let limit = try limit() { options.cacheLimit = limit }
    }
}

import ShardCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Path arithmetic for shards and indexes: absolute and real paths, and the rule that stores a
/// shard's path relative to the index file's folder when it lies below it.
public enum Paths {
    /// The current working directory.
    public static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "." }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    /// `path` made absolute against the current directory and lexically normalised (`.` and empty
    /// components dropped, `..` removing the previous component).
    public static func absolute(_ path: String) -> String {
        let joined = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The folder part of `path` (`"."` when there is none).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last component of `path`.
    public static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `realpath(3)`: the absolute path with symlinks resolved.
    ///
    /// - Throws: ``IOError`` when the path does not exist.
    public static func real(_ path: String) throws(IOError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw IOError("resolve", path: path, errno: currentErrno())
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The canonical absolute path of a file: its folder resolved with `realpath`, its own name kept
    /// (so a shard that is a symlink is stored under the link's name, not its target's).
    public static func canonicalFile(_ path: String) throws(IOError) -> String {
        let dir = try real(directory(of: absolute(path)))
        let name = basename(of: absolute(path))
        return dir == "/" ? "/" + name : dir + "/" + name
    }

    /// How a shard's path is stored in an index: relative to `indexDirectory` (a real path) when the
    /// shard lies below it, otherwise absolute.
    ///
    /// ```swift
    /// Paths.storedShardPath("/data/ds/train/s-0.tar", indexDirectory: "/data/ds")  // "train/s-0.tar"
    /// Paths.storedShardPath("/other/s-0.tar", indexDirectory: "/data/ds")          // "/other/s-0.tar"
    /// ```
    public static func storedShardPath(_ canonicalShard: String, indexDirectory: String) -> String {
        let prefix = indexDirectory == "/" ? "/" : indexDirectory + "/"
        if canonicalShard.hasPrefix(prefix) { return String(canonicalShard.dropFirst(prefix.count)) }
        return canonicalShard
    }

    /// The path to open for a stored shard path: absolute ones as they are, relative ones below
    /// `indexDirectory`.
    public static func resolveStoredShardPath(_ stored: String, indexDirectory: String) -> String {
        if stored.hasPrefix("/") { return stored }
        return indexDirectory == "/" ? "/" + stored : indexDirectory + "/" + stored
    }
}

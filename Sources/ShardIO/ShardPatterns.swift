import ShardCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Turns the shard arguments of `shardstore ingest` into a list of files: brace ranges and lists
/// (`train-{000000..000099}.tar`, `{a,b}.tar`) expanded by ``BraceExpansion``, then shell-style
/// globs (`*`, `?`, `[...]`) matched with `glob(3)`, sorted. Plain paths are kept as given.
/// Duplicates (the same file named twice) are removed, first occurrence kept.
public enum ShardPatterns {
    /// An argument that names no file.
    public struct NoMatch: Error, Sendable, CustomStringConvertible {
        /// The argument as given.
        public var pattern: String
        /// The first expanded path that does not exist, for brace patterns.
        public var missing: String?
        public var description: String {
            if let missing, missing != pattern {
                return "shard '\(missing)' (from '\(pattern)') does not exist; check the pattern's range"
            }
            if isGlob(pattern) {
                return "no file matches '\(pattern)'; check the folder and the pattern (`ls \(pattern)`)"
            }
            return "shard '\(pattern)' does not exist; check the path"
        }
    }

    /// Whether `s` contains glob metacharacters.
    public static func isGlob(_ s: String) -> Bool {
        s.contains("*") || s.contains("?") || s.contains("[")
    }

    /// Expands every argument, in order.
    ///
    /// - Throws: ``BraceExpansion/Error`` for an unexpandable pattern; ``NoMatch`` when a glob
    ///   matches nothing or a plain or brace-expanded path does not exist.
    public static func expand(_ arguments: [String]) throws -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        for argument in arguments {
            for word in try BraceExpansion.expand(argument) {
                let paths: [String]
                if isGlob(word) {
                    paths = glob(word)
                    if paths.isEmpty { throw NoMatch(pattern: argument, missing: word == argument ? nil : word) }
                } else {
                    guard FileStatus.exists(word) else { throw NoMatch(pattern: argument, missing: word) }
                    paths = [word]
                }
                for p in paths where seen.insert(Paths.absolute(p)).inserted { out.append(p) }
            }
        }
        return out
    }

    /// `glob(3)` matches of `pattern`, sorted; empty when nothing matches.
    public static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out
    }
}

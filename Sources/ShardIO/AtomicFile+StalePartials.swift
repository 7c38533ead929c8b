#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension AtomicFile {
    /// Removes the temporaries that killed processes left beside `destination`:
    /// `.NAME.shardstore-partial-PID-RANDOM` (and the older `.NAME.shardstore-partial-PID` and
    /// `.NAME.partial-PID` forms, with SQLite's `-journal`, `-wal` and `-shm` beside them), files
    /// or folders, whose process no longer runs (`kill(PID, 0)` fails with `ESRCH`). Temporaries
    /// of running processes and of this one are kept. Symbolic links are removed, never followed.
    ///
    /// ```swift
    /// let removed = AtomicFile.removeStalePartials(for: "train.h5")  // [".../.train.h5.shardstore-partial-4242-…"]
    /// ```
    ///
    /// - Returns: the removed paths (the folder as in `destination`, then the name).
    /// - Complexity: one pass over the destination folder's entries.
    @discardableResult
    public static func removeStalePartials(for destination: String) -> [String] {
        let name = Paths.basename(of: Paths.absolute(destination))
        let folder = Paths.directory(of: destination)
        let prefixes = [".\(name).shardstore-partial-", ".\(name).partial-"]
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        let listing = dup(fd)
        guard listing >= 0, let dir = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            return []
        }
        var names: [String] = []
        while let entry = readdir(dir) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            names.append(entryName)
        }
        closedir(dir)
        var removed: [String] = []
        let me = getpid()
        for entryName in names {
            guard let pid = prefixes.lazy.compactMap({ Self.processID(in: entryName, after: $0) }).first,
                pid != me, pid > 0
            else { continue }
            if kill(pid, 0) == 0 || currentErrno() != ESRCH { continue }
            let full = (folder == "/" ? "" : folder) + "/" + entryName
            var st = stat()
            guard fstatat(fd, entryName, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                guard (try? FileTreeRemoval.remove(full)) != nil else { continue }
            } else if unlinkat(fd, entryName, 0) != 0 {
                continue
            }
            removed.append(full)
        }
        return removed
    }

    /// The process id in `name` when it is `PREFIX` + digits, alone or followed by `-` and more
    /// (the random part, a SQLite `-journal`).
    private static func processID(in name: String, after prefix: String) -> pid_t? {
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.utf8.dropFirst(prefix.utf8.count)
        let digits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty, digits.count <= 10 else { return nil }
        let tail = rest.dropFirst(digits.count)
        guard tail.isEmpty || tail.first == UInt8(ascii: "-") else { return nil }
        return pid_t(String(decoding: digits, as: UTF8.self))
    }
}

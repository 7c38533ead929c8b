#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Removes a file or a folder tree without following symbolic links (a link is removed, never
/// its target).
///
/// ```swift
/// try FileTreeRemoval.remove("out/.val.shardstore-partial-4242-0123456789abcdef")
/// ```
public enum FileTreeRemoval {
    /// Removes `path` and, for a folder, everything below it. A missing path is not an error.
    /// - Throws: `IOError` naming the entry that could not be removed.
    /// - Complexity: O(entries below `path`).
    public static func remove(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if currentErrno() == ENOENT { return }
            throw IOError("inspect", path: path, errno: currentErrno())
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            if unlink(path) != 0, currentErrno() != ENOENT {
                throw IOError("remove", path: path, errno: currentErrno())
            }
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open folder", path: path, errno: currentErrno()) }
        try removeContents(fd, path)
        close(fd)
        if rmdir(path) != 0, currentErrno() != ENOENT {
            throw IOError("remove folder", path: path, errno: currentErrno())
        }
    }

    /// Empties the folder open as `fd` (named `path` in errors).
    private static func removeContents(_ fd: Int32, _ path: String) throws {
        let dupfd = dup(fd)
        guard dupfd >= 0, let dir = fdopendir(dupfd) else {
            throw IOError("list folder", path: path, errno: currentErrno())
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        for name in names {
            var st = stat()
            guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw IOError("open folder", path: path + "/" + name, errno: currentErrno()) }
                defer { close(child) }
                try removeContents(child, path + "/" + name)
                if unlinkat(fd, name, AT_REMOVEDIR) != 0, currentErrno() != ENOENT {
                    throw IOError("remove folder", path: path + "/" + name, errno: currentErrno())
                }
            } else if unlinkat(fd, name, 0) != 0, currentErrno() != ENOENT {
                throw IOError("remove", path: path + "/" + name, errno: currentErrno())
            }
        }
    }
}

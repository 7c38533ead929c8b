import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// An export's destination while it is written: a temporary file or folder beside the
/// destination (`.NAME.shardstore-partial-PID`), renamed into place by ``publish()`` only when
/// everything was written and synced. Until then the destination is untouched; a failure, a
/// cancellation or a dropped `ExportOutput` removes the temporary. So an export either replaces
/// the destination whole or leaves it as it was.
///
/// ```swift
/// let output = try ExportOutput(destination: "train.h5", kind: .file, overwrite: false, inputs: [index])
/// try writeEverything(to: output.temporaryPath)
/// try output.publish()
/// ```
///
/// Not thread-safe: one exporting thread owns it.
public final class ExportOutput {
    /// A file (HDF5) or a folder (raw exports).
    public enum Kind: Sendable {
        case file, directory
    }

    /// The destination as given.
    public let destination: String
    /// Where to write: beside the destination, in the same folder, so that the rename is atomic.
    public let temporaryPath: String
    /// A file or a folder.
    public let kind: Kind
    private var published = false

    /// Checks the destination and reserves the temporary name; writes nothing yet (for a folder,
    /// creates the empty temporary folder).
    ///
    /// - Parameters:
    ///   - destination: the output path.
    ///   - kind: a file or a folder.
    ///   - overwrite: replace an existing destination at publish.
    ///   - inputs: paths the export reads (the index, its location file, the shards); writing
    ///     over one of them is refused.
    /// - Throws: ``ExportError/outputExists(path:)``, ``ExportError/missingParent(path:parent:)``,
    ///   ``ExportError/outputIsInput(path:input:)``, `IOError`.
    public init(destination: String, kind: Kind, overwrite: Bool, inputs: [String]) throws {
        self.destination = destination
        self.kind = kind
        let parent = Paths.directory(of: Paths.absolute(destination))
        var st = stat()
        guard stat(parent, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ExportError.missingParent(path: destination, parent: parent)
        }
        if lstat(destination, &st) == 0 {
            guard overwrite else { throw ExportError.outputExists(path: destination) }
            if let target = try? Paths.real(destination) {
                for input in inputs {
                    guard let real = try? Paths.real(input) else { continue }
                    if real == target || (kind == .directory && real.hasPrefix(target + "/")) {
                        throw ExportError.outputIsInput(path: destination, input: input)
                    }
                }
            }
            let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
            if isDirectory != (kind == .directory) {
                throw ExportError.invalidArgument(
                    "cannot replace '\(destination)': it is a \(isDirectory ? "folder" : "file"), and this export writes a \(kind == .directory ? "folder" : "file"); remove it or choose another --out"
                )
            }
        }
        let name = Paths.basename(of: Paths.absolute(destination))
        temporaryPath = (parent == "/" ? "" : parent) + "/.\(name).shardstore-partial-\(getpid())"
        // A leftover of this same process id (an earlier run that was killed) is ours to replace.
        try? FileTreeRemoval.remove(temporaryPath)
        if kind == .directory, mkdir(temporaryPath, 0o755) != 0 {
            throw IOError("create folder", path: temporaryPath, errno: errno)
        }
    }

    /// Moves the finished temporary into place. For a file, `rename` replaces an existing
    /// destination atomically. For a folder, an existing destination is first renamed aside
    /// (`.NAME.shardstore-old-PID`), the new folder renamed in, then the old one removed; a crash
    /// between the two renames leaves both folders, never a half-written one.
    ///
    /// Sync the written data before calling this.
    /// - Throws: `IOError` naming the rename that failed; the temporary is then removed.
    public func publish() throws {
        precondition(!published, "ExportOutput.publish() called twice")
        do {
            switch kind {
            case .file:
                if rename(temporaryPath, destination) != 0 {
                    throw IOError("rename '\(temporaryPath)' to", path: destination, errno: errno)
                }
            case .directory:
                var st = stat()
                var aside: String?
                if lstat(destination, &st) == 0 {
                    let parent = Paths.directory(of: Paths.absolute(destination))
                    let name = Paths.basename(of: Paths.absolute(destination))
                    let old = (parent == "/" ? "" : parent) + "/.\(name).shardstore-old-\(getpid())"
                    try? FileTreeRemoval.remove(old)
                    if rename(destination, old) != 0 {
                        throw IOError("move the old output aside to '\(old)' from", path: destination, errno: errno)
                    }
                    aside = old
                }
                if rename(temporaryPath, destination) != 0 {
                    let e = errno
                    if let aside { _ = rename(aside, destination) }
                    throw IOError("rename '\(temporaryPath)' to", path: destination, errno: e)
                }
                if let aside { try? FileTreeRemoval.remove(aside) }
            }
            syncDirectory(Paths.directory(of: Paths.absolute(destination)))
            published = true
        } catch {
            discard()
            throw error
        }
    }

    /// Removes the temporary (nothing happens to the destination). Safe to call more than once.
    public func discard() {
        guard !published else { return }
        try? FileTreeRemoval.remove(temporaryPath)
    }

    deinit { discard() }

    private func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// Removes a file or a folder tree without following symbolic links (a link is removed, never
/// its target).
enum FileTreeRemoval {
    /// Removes `path` and, for a folder, everything below it. A missing path is not an error.
    /// - Throws: `IOError` naming the entry that could not be removed.
    static func remove(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw IOError("inspect", path: path, errno: errno)
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            if unlink(path) != 0, errno != ENOENT { throw IOError("remove", path: path, errno: errno) }
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open folder", path: path, errno: errno) }
        try removeContents(fd, path)
        close(fd)
        if rmdir(path) != 0, errno != ENOENT { throw IOError("remove folder", path: path, errno: errno) }
    }

    /// Empties the folder open as `fd` (named `path` in errors).
    private static func removeContents(_ fd: Int32, _ path: String) throws {
        let dupfd = dup(fd)
        guard dupfd >= 0, let dir = fdopendir(dupfd) else { throw IOError("list folder", path: path, errno: errno) }
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
                guard child >= 0 else { throw IOError("open folder", path: path + "/" + name, errno: errno) }
                defer { close(child) }
                try removeContents(child, path + "/" + name)
                if unlinkat(fd, name, AT_REMOVEDIR) != 0, errno != ENOENT {
                    throw IOError("remove folder", path: path + "/" + name, errno: errno)
                }
            } else if unlinkat(fd, name, 0) != 0, errno != ENOENT {
                throw IOError("remove", path: path + "/" + name, errno: errno)
            }
        }
    }
}

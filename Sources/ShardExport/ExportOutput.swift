import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// An export's destination while it is written: a temporary file or folder beside the
/// destination (`.NAME.shardstore-partial-PID-RANDOM`), moved into place by ``publish()`` only
/// when everything was written and synced. Until then the destination is untouched; a failure, a
/// cancellation or a dropped `ExportOutput` removes the temporary. So an export either replaces
/// the destination whole or leaves it as it was. A file is an ``AtomicFile`` (created with
/// `O_EXCL | O_NOFOLLOW`; libhdf5 writes it through ``AtomicFile/descriptorPath``); a folder is
/// made with `mkdir`, which never follows a link either. Temporaries that killed exports left
/// beside the destination are removed first (``AtomicFile/removeStalePartials(for:)``).
///
/// ```swift
/// let output = try ExportOutput(destination: "train.h5", kind: .file, overwrite: false, inputs: [index])
/// try writeEverything(to: output.file!.descriptorPath)
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
    /// The temporary file or folder, beside the destination, in the same folder, so that the
    /// rename is atomic.
    public let temporaryPath: String
    /// For ``Kind/file``: the temporary file, open. Nil for a folder.
    public let file: AtomicFile?
    /// A file or a folder.
    public let kind: Kind
    private var published = false

    /// Checks the destination, removes stale temporaries of killed exports beside it, and
    /// creates the temporary (an empty file, or an empty folder).
    ///
    /// - Parameters:
    ///   - destination: the output path.
    ///   - kind: a file or a folder.
    ///   - overwrite: replace an existing destination at publish.
    ///   - inputs: paths the export reads (the index, its journal and location file, the
    ///     shards); writing over one of them is refused, whether it exists yet or not.
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
        let exists = lstat(destination, &st) == 0
        if exists, !overwrite { throw ExportError.outputExists(path: destination) }
        if let input = ProtectedInput.overwritten(
            by: destination, inputs: inputs.map { ProtectedInput(path: $0, role: "input") },
            writesFolder: kind == .directory)
        {
            throw ExportError.outputIsInput(path: destination, input: input.path)
        }
        if exists {
            let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
            if isDirectory != (kind == .directory) {
                throw ExportError.invalidArgument(
                    "cannot replace '\(destination)': it is a \(isDirectory ? "folder" : "file"), and this export writes a \(kind == .directory ? "folder" : "file"); remove it or choose another --out"
                )
            }
        }
        AtomicFile.removeStalePartials(for: destination)
        switch kind {
        case .file:
            let file = try AtomicFile(destination: destination)
            self.file = file
            temporaryPath = file.temporaryPath
        case .directory:
            file = nil
            var attempt = 0
            while true {
                let path = (parent == "/" ? "" : parent) + "/" + AtomicFile.newPartialName(for: destination)
                if mkdir(path, 0o755) == 0 {
                    temporaryPath = path
                    break
                }
                if errno == EEXIST && attempt < 8 {
                    attempt += 1
                    continue
                }
                throw IOError("create folder", path: path, errno: errno)
            }
        }
    }

    /// Moves the finished temporary into place. A file is synced and renamed over the
    /// destination (``AtomicFile/commit(_:)``). For a folder, an existing destination is first
    /// renamed aside (`.NAME.shardstore-old-PID`), the new folder renamed in, then the old one
    /// removed; a crash between the two renames leaves both folders, never a half-written one.
    ///
    /// For a folder, sync the written data before calling this.
    /// - Throws: `IOError` naming the sync or rename that failed; the temporary is then removed
    ///   (a failed sync of the folder after the rename leaves the output in place).
    public func publish() throws {
        precondition(!published, "ExportOutput.publish() called twice")
        do {
            switch kind {
            case .file:
                try file!.commit(.replacing)
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
            published = true
        } catch {
            discard()
            throw error
        }
        if kind == .directory { try syncFolder(Paths.directory(of: Paths.absolute(destination))) }
    }

    /// Removes the temporary (nothing happens to the destination). Safe to call more than once.
    public func discard() {
        guard !published else { return }
        switch kind {
        case .file: file?.discard()
        case .directory: try? FileTreeRemoval.remove(temporaryPath)
        }
    }

    deinit { discard() }

    /// `fsync`s the folder that now holds the published output, so the rename survives a power
    /// loss; folders that cannot be synced (`EINVAL`, `EROFS`: some network file systems) need no
    /// sync, as for ``AtomicFile/commit(_:)``.
    ///
    /// - Throws: `IOError` naming the folder when it cannot be opened or synced (the output is in
    ///   place then, but may not survive a power loss).
    private func syncFolder(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open folder", path: path, errno: errno) }
        defer { close(fd) }
        while fsync(fd) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EINVAL || e == EROFS { return }
            throw IOError("sync folder", path: path, errno: e)
        }
    }
}

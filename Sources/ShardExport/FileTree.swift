import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// Creates folders and files below one root folder through descriptors only: every folder is
/// opened with `openat(…, O_DIRECTORY | O_NOFOLLOW)` relative to its parent's descriptor, made
/// with `mkdirat`, and every file is created with `openat(…, O_CREAT | O_EXCL | O_NOFOLLOW)`. No
/// path is ever resolved from the root by name again, so a symbolic link planted in the tree
/// (even while it is written) is never followed out of it: it is refused with ``Crossing``.
///
/// ```swift
/// let tree = try FileTree(root: output.temporaryPath)
/// try tree.writeFile([Array("a".utf8), Array("x.jpg".utf8)], bytes)
/// try tree.syncFileSystem()
/// ```
///
/// Keeps the chain of folders of the last file open, so files written folder by folder cost one
/// `openat`, one `write` and one `close` each. Not thread-safe.
final class FileTree {
    /// A folder on the way to a file is a symbolic link or not a folder (the tree was tampered with).
    struct Crossing: Error, Equatable {
        /// The offending folder, relative to the root.
        var folder: String
        /// Why ("crosses the symlink 'a/b'").
        var reason: String
    }

    /// The root's path, for messages.
    let rootPath: String
    private let root: Int32
    /// The folders of the current chain below the root, and their descriptors.
    private var chainNames: [[UInt8]] = []
    private var chainFDs: [Int32] = []

    /// Opens the root folder (which must exist and not be a symbolic link).
    ///
    /// - Throws: `IOError`.
    init(root: String) throws {
        rootPath = root
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open folder", path: root, errno: errno) }
        self.root = fd
    }

    deinit {
        closeChain(from: 0)
        close(root)
    }

    /// The descriptor of the folder `components` below the root, made when missing. Valid until
    /// the next call.
    ///
    /// - Throws: ``Crossing``, `IOError`.
    func folder(_ components: ArraySlice<[UInt8]>) throws -> Int32 {
        var common = 0
        while common < chainNames.count, common < components.count,
            chainNames[common] == components[components.startIndex + common]
        {
            common += 1
        }
        closeChain(from: common)
        for name in components.dropFirst(common) {
            let parent = chainFDs.last ?? root
            let fd = try openFolder(name, in: parent)
            chainNames.append(name)
            chainFDs.append(fd)
        }
        return chainFDs.last ?? root
    }

    /// Creates the file `name` in the folder `folder` (from ``folder(_:)``), which must not exist.
    ///
    /// - Throws: ``Crossing`` when `name` is a symbolic link, `IOError`.
    func createFile(_ name: [UInt8], in folder: Int32) throws -> Int32 {
        let fd = (name + [0]).withUnsafeBufferPointer { c in
            c.withMemoryRebound(to: CChar.self) {
                openat(folder, $0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            }
        }
        guard fd >= 0 else {
            let e = errno
            let path = displayPath(chainNames + [name])
            if e == EEXIST || e == ELOOP, isSymlink(name, in: folder) {
                throw Crossing(folder: path, reason: "meets the symlink '\(path)' where its file goes")
            }
            throw IOError("create", path: rootPath + "/" + path, errno: e)
        }
        return fd
    }

    /// Writes a whole file at `components` (folders, then the file name), making its folders.
    ///
    /// - Throws: ``Crossing``, `IOError` naming the file.
    /// - Complexity: one `openat`, `write`s of the whole buffer and one `close`, plus `mkdirat`
    ///   and `openat` for folders not in the current chain.
    func writeFile(_ components: [[UInt8]], _ bytes: UnsafeRawBufferPointer) throws {
        let parent = try folder(components.dropLast())
        let fd = try createFile(components[components.count - 1], in: parent)
        defer { close(fd) }
        try FileWriting.writeAll(bytes, to: fd, path: self.rootPath + "/" + self.displayPath(components))
    }

    /// Flushes every file system holding the tree to disk with one `syncfs(2)`: file data, new
    /// folders and their entries (one journal commit, instead of one `fsync` per file).
    ///
    /// - Throws: `IOError` (`syncfs` reports write-back errors since Linux 5.8).
    func syncFileSystem() throws {
        if let syncfs = Self.syncfs {
            if syncfs(root) != 0 { throw IOError("sync the file system of", path: rootPath, errno: errno) }
        } else {
            // No syncfs in this C library: sync(2) flushes every file system (it reports no errors).
            sync()
        }
    }

    /// glibc declares `syncfs` only under `_GNU_SOURCE`, which Swift's Glibc module does not
    /// set, so the function is looked up by name (glibc has had it since 2.14).
    private static let syncfs: (@convention(c) (Int32) -> Int32)? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "syncfs") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Int32).self)
    }()

    /// `fsync(2)` of the folder `components` (its entries).
    func syncFolder(_ components: ArraySlice<[UInt8]>) throws {
        let fd = try folder(components)
        if fsync(fd) != 0 {
            throw IOError("sync folder", path: rootPath + "/" + displayPath(Array(components)), errno: errno)
        }
    }

    /// `a/b` for messages.
    func displayPath(_ components: [[UInt8]]) -> String {
        components.map { ExportPath.display($0) }.joined(separator: "/")
    }

    private func openFolder(_ name: [UInt8], in parent: Int32) throws -> Int32 {
        let cName = name + [0]
        let made = cName.withUnsafeBufferPointer { c in
            c.withMemoryRebound(to: CChar.self) { mkdirat(parent, $0.baseAddress!, 0o755) }
        }
        let path = displayPath(chainNames + [name])
        if made != 0, errno != EEXIST {
            throw IOError("create folder", path: rootPath + "/" + path, errno: errno)
        }
        let fd = cName.withUnsafeBufferPointer { c in
            c.withMemoryRebound(to: CChar.self) {
                openat(parent, $0.baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
        }
        guard fd >= 0 else {
            let e = errno
            if isSymlink(name, in: parent) { throw Crossing(folder: path, reason: "crosses the symlink '\(path)'") }
            if e == ENOTDIR { throw Crossing(folder: path, reason: "crosses '\(path)', which is not a folder") }
            throw IOError("open folder", path: rootPath + "/" + path, errno: e)
        }
        return fd
    }

    private func isSymlink(_ name: [UInt8], in folder: Int32) -> Bool {
        var st = stat()
        let found = (name + [0]).withUnsafeBufferPointer { c in
            c.withMemoryRebound(to: CChar.self) { fstatat(folder, $0.baseAddress!, &st, AT_SYMLINK_NOFOLLOW) }
        }
        return found == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    private func closeChain(from depth: Int) {
        while chainFDs.count > depth {
            close(chainFDs.removeLast())
            chainNames.removeLast()
        }
    }
}

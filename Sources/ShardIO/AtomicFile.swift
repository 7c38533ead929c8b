#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file written under a temporary name beside its destination and moved into place whole by
/// ``commit(_:)``: until then the destination is untouched, and a failure, ``discard()`` or a
/// dropped `AtomicFile` removes the temporary. Every writer of ShardStore goes through it (`get
/// -o`, the new index, exports, the location file).
///
/// The temporary, `.NAME.shardstore-partial-PID-RANDOM` in the destination's folder, is created
/// with `O_CREAT | O_EXCL | O_NOFOLLOW`: a file or a symbolic link planted at that name makes the
/// creation fail, never redirects it, and the random part makes the name unpredictable. The
/// process id in it lets a later writer remove the temporaries of killed processes
/// (``removeStalePartials(for:)``). Write through ``descriptor`` (or ``write(_:)``,
/// ``write(_:at:)``, ``writer(at:capacity:)``); a library that opens files by name can be given
/// ``descriptorPath`` (`/proc/self/fd/N`), which reaches this very file whatever happens to its
/// name. The folder is opened once, and the publishing `rename` or `link` goes through that
/// folder's descriptor.
///
/// ```swift
/// let file = try AtomicFile(destination: "out.bin")
/// try bytes.withUnsafeBytes { try file.write($0) }
/// try file.commit()   // fsync, rename over out.bin, fsync of the folder
/// ```
///
/// Not thread-safe: one thread owns it.
public final class AtomicFile {
    /// How ``commit(_:)`` treats an existing destination.
    public enum Publication: Sendable {
        /// `rename(2)`: an existing destination is replaced atomically.
        case replacing
        /// `link(2)` then `unlink(2)` of the temporary: an existing destination makes the commit
        /// fail with `EEXIST` and stays as it was. On a file system without hard links, falls
        /// back to `rename(2)` after checking that the destination does not exist.
        case refusingExisting
    }

    /// The destination, as given.
    public let destination: String
    /// The temporary file: the destination's folder (symbolic links resolved) and the temporary
    /// name.
    public let temporaryPath: String
    /// The temporary file's descriptor, open for reading and writing; closed on deinit.
    public let descriptor: Int32
    private let folder: Int32
    private let folderPath: String
    private let temporaryName: String
    private let destinationName: String
    private let identity: (device: UInt64, inode: UInt64)
    private var state = State.writing

    private enum State { case writing, committed, discarded }

    /// The prefix of every temporary name for `destination`: `.NAME.shardstore-partial-`.
    public static func partialPrefix(for destination: String) -> String {
        ".\(Paths.basename(of: Paths.absolute(destination))).shardstore-partial-"
    }

    /// A new temporary name for `destination` (a name, not a path):
    /// `.NAME.shardstore-partial-PID-RANDOM`, with 16 random hex digits. A temporary folder
    /// made under such a name is cleaned up by ``removeStalePartials(for:)`` as a file is.
    public static func newPartialName(for destination: String) -> String {
        partialPrefix(for: destination) + "\(getpid())-" + randomHex()
    }

    /// Creates the temporary file for `destination` in its folder.
    ///
    /// - Parameters:
    ///   - destination: the path the file is published at; its folder must exist.
    ///   - permissions: the new file's mode, before the umask.
    /// - Throws: ``IOError`` naming the folder or the temporary file that could not be opened or
    ///   created.
    /// - Complexity: O(1): an `open` of the folder and one of the file.
    public init(destination: String, permissions: mode_t = 0o644) throws(IOError) {
        self.destination = destination
        let absolute = Paths.absolute(destination)
        let folderPath = Paths.directory(of: absolute)
        let name = Paths.basename(of: absolute)
        guard !name.isEmpty else {
            throw IOError("write", path: destination, errno: EISDIR, detail: "a folder, not a file name")
        }
        let folder = open(folderPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { throw IOError("open folder", path: folderPath, errno: currentErrno()) }
        let resolved = (try? Paths.real(folderPath)) ?? folderPath
        var attempt = 0
        while true {
            let temporaryName = Self.newPartialName(for: destination)
            let fd = openat(folder, temporaryName, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, permissions)
            let e = currentErrno()
            let temporaryPath = (resolved == "/" ? "" : resolved) + "/" + temporaryName
            if fd < 0 {
                // A name taken by chance (or planted): draw another, a few times.
                if e == EEXIST && attempt < 8 {
                    attempt += 1
                    continue
                }
                close(folder)
                throw IOError("create", path: temporaryPath, errno: e)
            }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                let e = currentErrno()
                unlinkat(folder, temporaryName, 0)
                close(fd)
                close(folder)
                throw IOError("inspect", path: temporaryPath, errno: e)
            }
            self.folder = folder
            self.folderPath = folderPath
            self.temporaryName = temporaryName
            self.temporaryPath = temporaryPath
            self.destinationName = name
            self.descriptor = fd
            identity = (UInt64(st.st_dev), UInt64(st.st_ino))
            return
        }
    }

    deinit {
        discard()
        close(descriptor)
        close(folder)
    }

    /// A path that opens this file by its descriptor (`/proc/self/fd/N`), for a library that
    /// only takes names (libhdf5): it reaches this file even if something replaced its name.
    public var descriptorPath: String { "/proc/self/fd/\(descriptor)" }

    /// Writes all of `bytes` at the descriptor's current offset.
    ///
    /// - Throws: ``IOError`` naming the temporary file.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) {
        try FileWriting.writeAll(bytes, to: descriptor, path: temporaryPath)
    }

    /// Writes all of `bytes` at byte `offset` (a header at offset 0, say).
    ///
    /// - Throws: ``IOError`` naming the temporary file and the offset.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(IOError) {
        try FileWriting.writeAll(bytes, to: descriptor, at: offset, path: temporaryPath)
    }

    /// A buffered writer appending from byte `offset` (see ``PositionalWriter``).
    public func writer(at offset: Int64, capacity: Int) -> PositionalWriter {
        PositionalWriter(descriptor: descriptor, path: temporaryPath, at: offset, capacity: capacity)
    }

    /// The file's current size (`fstat`).
    ///
    /// - Throws: ``IOError`` naming the temporary file.
    public func size() throws(IOError) -> Int64 {
        var st = stat()
        guard fstat(descriptor, &st) == 0 else { throw IOError("inspect", path: temporaryPath, errno: currentErrno()) }
        return Int64(st.st_size)
    }

    /// Publishes the file: `fsync` (its result checked), checks that the temporary name still
    /// holds this file, moves it to the destination as `publication` says, and `fsync`s the
    /// folder. On a failure the temporary is removed and the destination is as it was.
    ///
    /// - Throws: ``IOError``: `sync` naming the temporary file (a full disk, an I/O error);
    ///   `publish` with `errno` `EEXIST` for ``Publication/refusingExisting`` when the destination
    ///   exists; `rename` or `link` naming the destination; `sync folder` when the folder could
    ///   not be synced (the destination is then in place, but may not survive a power loss).
    public func commit(_ publication: Publication = .replacing) throws(IOError) {
        precondition(state == .writing, "AtomicFile.commit() after commit or discard")
        do throws(IOError) {
            try FileWriting.sync(descriptor, path: temporaryPath)
            try checkName()
            var st = stat()
            switch publication {
            case .replacing:
                guard renameat(folder, temporaryName, folder, destinationName) == 0 else {
                    throw IOError("rename '\(temporaryPath)' to", path: destination, errno: currentErrno())
                }
            case .refusingExisting:
                if linkat(folder, temporaryName, folder, destinationName, 0) == 0 {
                    unlinkat(folder, temporaryName, 0)
                } else {
                    let e = currentErrno()
                    if e == EEXIST { throw IOError("publish", path: destination, errno: EEXIST) }
                    guard e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == EMLINK || e == ENOSYS else {
                        throw IOError("link '\(temporaryPath)' to", path: destination, errno: e)
                    }
                    // No hard links here: rename, unless the destination appeared.
                    if fstatat(folder, destinationName, &st, AT_SYMLINK_NOFOLLOW) == 0 {
                        throw IOError("publish", path: destination, errno: EEXIST)
                    }
                    guard renameat(folder, temporaryName, folder, destinationName) == 0 else {
                        throw IOError("rename '\(temporaryPath)' to", path: destination, errno: currentErrno())
                    }
                }
            }
        } catch {
            discard()
            throw error
        }
        state = .committed
        while fsync(folder) != 0 {
            let e = currentErrno()
            if e == EINTR { continue }
            // Folders that cannot be synced (some network file systems) need no sync.
            if e == EINVAL || e == EROFS { break }
            throw IOError("sync folder", path: folderPath, errno: e)
        }
    }

    /// Checks that the temporary name still holds this file (same device and inode, not a link):
    /// another process with write access to the folder may have removed or replaced it.
    ///
    /// - Throws: ``IOError`` naming the temporary file when the name holds something else.
    public func checkName() throws(IOError) {
        var st = stat()
        guard fstatat(folder, temporaryName, &st, AT_SYMLINK_NOFOLLOW) == 0, UInt64(st.st_dev) == identity.device,
            UInt64(st.st_ino) == identity.inode
        else {
            throw IOError(
                "publish", path: temporaryPath, errno: 0,
                detail: "another process removed or replaced the temporary file; nothing was published")
        }
    }

    /// Removes the temporary file (nothing happens to the destination). Safe to call more than
    /// once; does nothing after a commit.
    public func discard() {
        guard state == .writing else { return }
        state = .discarded
        var st = stat()
        // Only our own file: if something replaced the name, it is not ours to remove.
        if fstatat(folder, temporaryName, &st, AT_SYMLINK_NOFOLLOW) == 0, UInt64(st.st_dev) == identity.device,
            UInt64(st.st_ino) == identity.inode
        {
            unlinkat(folder, temporaryName, 0)
        }
    }

    /// 16 random hex digits.
    static func randomHex() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = String(generator.next() as UInt64, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The parts of `stat(2)` ShardStore compares to decide whether a shard changed since ingest.
public struct FileStatus: Sendable, Equatable {
    /// Size in bytes.
    public var size: Int64
    /// Modification time in nanoseconds since the epoch.
    public var modificationTimeNanoseconds: Int64
    /// Whether the file is a regular file.
    public var isRegularFile: Bool
    /// Whether the path is a directory.
    public var isDirectory: Bool

    public init(size: Int64, modificationTimeNanoseconds: Int64, isRegularFile: Bool, isDirectory: Bool = false) {
        self.size = size
        self.modificationTimeNanoseconds = modificationTimeNanoseconds
        self.isRegularFile = isRegularFile
        self.isDirectory = isDirectory
    }

    init(_ st: stat) {
        #if canImport(Darwin)
            let ts = st.st_mtimespec
        #else
            let ts = st.st_mtim
        #endif
        self.size = Int64(st.st_size)
        self.modificationTimeNanoseconds = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        self.isRegularFile = (st.st_mode & S_IFMT) == S_IFREG
        self.isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The status of `path` (`stat(2)`, following symlinks).
    ///
    /// - Throws: ``IOError`` when the path does not exist or cannot be examined.
    public static func of(_ path: String) throws(IOError) -> FileStatus {
        var st = stat()
        guard path.withCString({ stat($0, &st) }) == 0 else {
            throw IOError("stat", path: path, errno: currentErrno())
        }
        return FileStatus(st)
    }

    /// Whether something exists at `path` (a symlink to nothing counts as absent).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return path.withCString { stat($0, &st) } == 0
    }
}

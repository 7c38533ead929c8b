import ShardCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file opened read-only for positioned reads (`pread`), safe to share between threads.
///
/// The descriptor is closed when the object is released.
///
/// ```swift
/// let file = try ReadOnlyFile(path: "shard-000000.tar")
/// let header = try file.read(count: 512, at: 0)
/// ```
public final class ReadOnlyFile: RandomAccessBytes, @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The file descriptor (owned: closed on deinit).
    public let descriptor: Int32
    /// The file's status at open.
    public let status: FileStatus

    /// Opens `path` read-only (`open(2)` with `O_RDONLY | O_CLOEXEC`) and records its status.
    ///
    /// - Throws: ``IOError`` when the file cannot be opened or is not a regular file.
    public init(path: String) throws(IOError) {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw IOError("open", path: path, errno: currentErrno()) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = currentErrno()
            close(fd)
            throw IOError("stat", path: path, errno: e)
        }
        let status = FileStatus(st)
        guard status.isRegularFile else {
            close(fd)
            throw IOError("read", path: path, errno: 0, detail: "not a regular file")
        }
        self.path = path
        self.descriptor = fd
        self.status = status
    }

    deinit { close(descriptor) }

    /// The file's size at open.
    public var byteCount: Int64 { status.size }

    /// Reads up to `buffer.count` bytes at `offset` (`pread(2)`), looping over short reads and
    /// retrying on `EINTR`; returns fewer bytes only at the end of the file.
    ///
    /// - Throws: ``IOError`` naming the path and offset when `pread` fails.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try readAll(into: buffer, at: offset)
    }

    /// Typed-throws form of ``read(into:at:)``.
    public func readAll(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(IOError)
        -> Int
    {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n > 0 {
                done += n
            } else if n == 0 {
                break
            } else {
                let e = currentErrno()
                if e == EINTR { continue }
                throw IOError("read", path: path, errno: e, detail: "at byte offset \(offset + Int64(done))")
            }
        }
        return done
    }

    /// Reads exactly `count` bytes at `offset`.
    ///
    /// - Throws: ``IOError`` when the read fails or the file ends before `offset + count`.
    /// - Complexity: O(count).
    public func read(count: Int, at offset: Int64) throws(IOError) -> [UInt8] {
        var error: IOError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(IOError) {
                initialized = try readAll(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
            } catch let caughtError {
                error = caughtError
                initialized = 0
            }
        }
        if let error { throw error }
        guard bytes.count == count else {
            throw IOError(
                "read", path: path, errno: 0,
                detail: "file ends at byte \(offset + Int64(bytes.count)), \(count) bytes needed from offset \(offset)")
        }
        return bytes
    }
}

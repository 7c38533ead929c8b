#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes that finish: `write(2)` and `pwrite(2)` looped over short writes and `EINTR`, so a
/// caller never mistakes a partial write for a complete one.
///
/// ```swift
/// try bytes.withUnsafeBytes { try FileWriting.writeAll($0, to: fd, path: "out.bin") }
/// try header.withUnsafeBytes { try FileWriting.writeAll($0, to: fd, at: 0, path: "out.bin") }
/// ```
public enum FileWriting {
    /// Writes all of `bytes` at the descriptor's current offset (`write(2)`).
    ///
    /// - Parameters:
    ///   - bytes: what to write.
    ///   - fd: an open descriptor.
    ///   - path: the file's name in errors.
    /// - Throws: ``IOError`` naming `path` and the `errno` of the failed `write`.
    /// - Complexity: O(`bytes.count`).
    public static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32, path: @autoclosure () -> String)
        throws(IOError)
    {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                let e = currentErrno()
                if e == EINTR { continue }
                throw IOError("write", path: path(), errno: e)
            }
            done += n
        }
    }

    /// Writes all of `bytes` at byte `offset` of the file (`pwrite(2)`); the descriptor's own
    /// offset does not move.
    ///
    /// - Throws: ``IOError`` naming `path` and the byte offset of the failed `pwrite`.
    /// - Complexity: O(`bytes.count`).
    public static func writeAll(
        _ bytes: UnsafeRawBufferPointer, to fd: Int32, at offset: Int64, path: @autoclosure () -> String
    ) throws(IOError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let e = currentErrno()
                if e == EINTR { continue }
                throw IOError("write", path: path(), errno: e, detail: "at byte offset \(offset + Int64(done))")
            }
            done += n
        }
    }

    /// `fsync(2)`, retried on `EINTR`.
    ///
    /// - Throws: ``IOError`` naming `path` when the data could not be flushed to disk.
    public static func sync(_ fd: Int32, path: @autoclosure () -> String) throws(IOError) {
        while fsync(fd) != 0 {
            let e = currentErrno()
            if e == EINTR { continue }
            throw IOError("sync", path: path(), errno: e)
        }
    }
}

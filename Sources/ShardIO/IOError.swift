#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed system call on a named file: what was attempted, on which path, and why.
///
/// ```swift
/// // cannot open shard '/data/shard-000003.tar': No such file or directory (errno 2)
/// ```
public struct IOError: Error, Sendable, CustomStringConvertible {
    /// What was attempted, as a short verb phrase ("open", "read", "stat").
    public var operation: String
    /// The file it was attempted on.
    public var path: String
    /// The `errno` value (0 when the failure was not a system error).
    public var errno: Int32
    /// Extra detail, such as the byte offset of a failed read.
    public var detail: String?

    public init(_ operation: String, path: String, errno: Int32, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    /// The system's text for ``errno``.
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String {
        var s = "cannot \(operation) '\(path)'"
        if let detail { s += " (\(detail))" }
        if errno != 0 { s += ": \(reason) (errno \(errno))" }
        return s
    }
}

/// The current `errno`.
@inline(__always) func currentErrno() -> Int32 {
    #if canImport(Glibc) || canImport(Musl)
        return Glibc.errno
    #else
        return Darwin.errno
    #endif
}

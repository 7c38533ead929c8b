import CShardStoreABI
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// What every C entry point shares: turning thrown errors into a status and a message, and
/// checking the pointers it was given, so that no Swift error and no trap crosses the ABI.
enum EntryPoint {
    /// The type of `char **error`.
    typealias ErrorOut = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    /// Runs `body`: `SHARDSTORE_OK` when it returns; otherwise the error's code
    /// (``ErrorCode/init(classifying:)``), with its one-line description stored in `*error` (a
    /// `malloc`ed copy, NULL when even that cannot be allocated) when `error` is not NULL.
    /// Holds the fork guard (`shardstore_fork_guard.h`) while `body` runs.
    @inline(__always)
    static func run(_ error: ErrorOut?, _ body: () throws -> Void) -> shardstore_status {
        shardstore_fork_guard_enter()
        defer { shardstore_fork_guard_leave() }
        do {
            try body()
            return SHARDSTORE_OK
        } catch let failure {
            return fail(failure, error)
        }
    }

    /// The status of `failure`, its message stored in `*error`.
    static func fail(_ failure: any Error, _ error: ErrorOut?) -> shardstore_status {
        if let error { error.pointee = strdup("\(failure)") }
        return shardstore_status(rawValue: UInt32(ErrorCode(classifying: failure).rawValue))
    }

    /// Runs `body` holding the fork guard: no fork happens while a thread is inside the library,
    /// so a child never finds a lock (SQLite's, the Swift runtime's, ours) held by a thread it lacks.
    @inline(__always)
    static func guarded<R>(_ body: () -> R) -> R {
        shardstore_fork_guard_enter()
        defer { shardstore_fork_guard_leave() }
        return body()
    }

    /// The handle behind a `shardstore_dataset *`.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) when `pointer` is NULL.
    @inline(__always)
    static func handle(_ pointer: OpaquePointer?) throws -> DatasetHandle {
        guard let pointer else {
            throw DatasetError(.invalidArgument, "dataset is NULL; pass a dataset from shardstore_open")
        }
        return Unmanaged<DatasetHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    /// `pointer`, which must not be NULL.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) naming `name` when it is.
    @inline(__always)
    static func required<Pointee>(_ pointer: UnsafeMutablePointer<Pointee>?, _ name: StaticString) throws
        -> UnsafeMutablePointer<Pointee>
    {
        guard let pointer else {
            throw DatasetError(.invalidArgument, "\(name) is NULL; pass where to store the result")
        }
        return pointer
    }
}

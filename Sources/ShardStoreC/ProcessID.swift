import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The calling process's id, without a system call per entry point: `getpid()` once, then again
/// in every child by a `pthread_atfork` handler (which glibc removes if the library is unloaded).
/// A `getpid()` per call cost about 5% of a C loop of `shardstore_get` on preloaded samples.
enum ProcessID {
    private static let cached: Atomic<Int32> = {
        pthread_atfork(nil, nil, { ProcessID.refresh() })
        return Atomic(getpid())
    }()

    /// The id of the calling process.
    ///
    /// - Complexity: O(1): an atomic load.
    @inline(__always)
    static var current: pid_t { cached.load(ordering: .relaxed) }

    /// Reads the id again: in a child, right after `fork()`, before `fork()` returns.
    private static func refresh() { cached.store(getpid(), ordering: .relaxed) }
}

#if canImport(Glibc)
    import Glibc
#endif

/// A mutex with a condition variable (POSIX), for threads that wait for each other's progress:
/// a loader's reader threads and its consumer. Not Dispatch, for the reason ``ParallelLoop`` gives.
///
/// ```swift
/// let monitor = Monitor()
/// monitor.withLock { while queue.isEmpty { monitor.wait() }; queue.removeFirst() }
/// monitor.withLock { queue.append(x); monitor.broadcast() }
/// ```
public final class Monitor: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` holding the mutex.
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a ``broadcast()``, releasing the mutex meanwhile. Call it inside ``withLock(_:)``,
    /// in a loop that checks what it waits for (wake-ups may be spurious).
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Wakes every waiting thread. Call it inside ``withLock(_:)`` after changing what they wait for.
    public func broadcast() { pthread_cond_broadcast(condition) }
}

/// A thread of its own (POSIX) running one closure; ``join()`` waits for it to end.
public final class WorkerThread: @unchecked Sendable {
    private var thread = pthread_t()
    private var joined = false

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread, or returns nil when the system cannot make one.
    public init?(_ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let made = pthread_create(
            &thread, nil,
            { context in
                Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
        if made != 0 {
            Unmanaged<Body>.fromOpaque(context).release()
            return nil
        }
    }

    /// Waits until the thread's closure has returned (once; later calls return at once).
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }
}

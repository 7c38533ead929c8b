import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a loop's iterations on threads of its own (POSIX threads, joined before it returns).
///
/// Not Dispatch: a process forked from one that used Dispatch cannot use it again (its worker
/// threads are gone and a child that waits on them blocks forever), and PyTorch's DataLoader
/// forks its workers. Threads made here live only for the loop, so a later fork finds none.
///
/// ```swift
/// ParallelLoop.run(iterations: shards.count) { s in load(s) }
/// ```
public enum ParallelLoop {
    /// The number of processors online (at least 1).
    public static var processorCount: Int { max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1) }

    /// Calls `body(i)` for every `i` in `0..<iterations`, on up to `width` threads (the caller's
    /// own among them), each taking the next undone iteration; returns when all are done. When a
    /// thread cannot be created, the threads that exist (at least the caller's) do the work.
    ///
    /// - Complexity: `iterations` calls of `body`, plus creating `width - 1` threads.
    public static func run(iterations: Int, width: Int = processorCount, _ body: @escaping @Sendable (Int) -> Void) {
        guard iterations > 0 else { return }
        let work = Work(iterations: iterations, body: body)
        let helpers = min(max(width, 1), iterations) - 1
        var threads: [pthread_t] = []
        for _ in 0..<helpers {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(work).toOpaque()
            if pthread_create(
                &thread, nil,
                { context in
                    Unmanaged<Work>.fromOpaque(context!).takeRetainedValue().drain()
                    return nil
                }, context) == 0
            {
                threads.append(thread)
            } else {
                Unmanaged<Work>.fromOpaque(context).release()
                break
            }
        }
        work.drain()
        for thread in threads { pthread_join(thread, nil) }
    }

    /// The iterations left, shared by the threads.
    private final class Work: Sendable {
        let iterations: Int
        let body: @Sendable (Int) -> Void
        let next = Atomic<Int>(0)

        init(iterations: Int, body: @escaping @Sendable (Int) -> Void) {
            self.iterations = iterations
            self.body = body
        }

        func drain() {
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < iterations else { return }
                body(i)
            }
        }
    }
}

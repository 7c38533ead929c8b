import ShardCore
import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// How a ``Loader`` orders, splits, batches and collates a dataset.
///
/// ```swift
/// var options = LoaderOptions(batchSize: 256)
/// options.order = .shuffle
/// options.seed = 42
/// options.rank = 1; options.worldSize = 8   // this process's share
/// ```
public struct LoaderOptions: Sendable {
    /// Samples per batch (the last one of an epoch may be short, see ``dropLast``).
    public var batchSize: Int
    /// Sequential, a global shuffle, or a locality-aware shuffle (``SampleOrder``).
    public var order: SampleOrder = .sequential
    /// The shuffles' seed; with the epoch it fixes the order on every machine.
    public var seed: UInt64 = 0
    /// Leave out an epoch's last batch when it is short.
    public var dropLast: Bool = false
    /// Reader threads; nil: auto (starts with 1 and adds threads while the consumer waits for
    /// batches, up to the processors there are).
    public var threads: Int?
    /// Batches ready or being read ahead of the consumer; nil: auto (twice the threads).
    public var prefetch: Int?
    /// This process's rank among `worldSize` (distributed training): it reads its own share.
    public var rank: Int = 0
    public var worldSize: Int = 1
    /// What the ranks do with an epoch that does not divide evenly (``DistributedTail``).
    public var tail: DistributedTail = .pad
    /// How members are collated (``CollateMode``).
    public var collate: CollateMode = .native
    /// Keeps a sample when it returns true; runs on the reader threads. The positions it drops
    /// still count as consumed: batches just come out shorter.
    public var filter: (@Sendable (SampleLease) -> Bool)?
    /// Transforms each collated batch on the reader threads.
    public var map: (@Sendable (CollatedBatch) throws -> CollatedBatch)?
    /// For a host that must know when the loader's threads run library code: the C ABI, whose
    /// fork guard no fork may pass while a thread is inside the library. A reader thread calls
    /// `enter` before reading a batch and `leave` after; ``Loader/next()`` calls `leave` before it
    /// waits for a batch and `enter` after (its caller holds the guard). Nil: no hooks.
    public var hooks: LoaderHooks?

    public init(batchSize: Int) { self.batchSize = batchSize }
}

/// Calls a ``Loader`` makes around its library work; see ``LoaderOptions/hooks``.
public struct LoaderHooks: Sendable {
    public var enter: @Sendable () -> Void
    public var leave: @Sendable () -> Void

    public init(enter: @escaping @Sendable () -> Void, leave: @escaping @Sendable () -> Void) {
        self.enter = enter
        self.leave = leave
    }
}

/// Where a loader is in its epochs: what ``Loader/state`` saves and ``Loader/restore(_:)`` takes
/// back, so that a run stopped in the middle of an epoch continues it exactly: no sample
/// repeated, none skipped, with the same world size or another.
public struct LoaderState: Sendable, Equatable, Codable {
    public var seed: UInt64
    public var epoch: Int
    /// Epoch positions consumed by all ranks together (ranks step together).
    public var consumed: Int
    public var worldSize: Int

    public init(seed: UInt64, epoch: Int, consumed: Int, worldSize: Int) {
        self.seed = seed
        self.epoch = epoch
        self.consumed = consumed
        self.worldSize = worldSize
    }
}

/// A loader error; the message says what to do.
public struct LoaderError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Batches of a dataset, read and collated by reader threads ahead of the consumer, in the
/// sampler's order whatever the number of threads.
///
/// ```swift
/// var options = LoaderOptions(batchSize: 256)
/// options.order = .shuffle
/// let loader = try Loader(dataset, options: options)
/// for epoch in 0..<10 {
///     try loader.setEpoch(epoch)
///     while let batch = try loader.next() { train(batch.column("npy")!) }
/// }
/// ```
///
/// Threads start on the first ``next()`` and belong to the process that started them: a process
/// forked after that has none, and its ``next()`` throws. Make loaders after forking.
///
/// - Complexity: starting an epoch is O(samples) for the shuffles (one permutation, 4 bytes a
///   sample); each batch is its samples' reads plus one copy of their bytes.
public final class Loader: @unchecked Sendable {
    public let dataset: Dataset
    public let options: LoaderOptions
    /// The process that made the loader: another (a forked child) may not use it.
    public let openedInProcess: pid_t
    private let lock = Monitor()
    private var epochNumber = 0
    /// Where the current epoch starts (a restored state's consumed position, else 0).
    private var start = 0
    private var run: LoaderRun?
    /// The last run's figures, for ``report``.
    private var lastChoice: (threads: Int, prefetch: Int, grew: Bool, dropped: Bool)?

    /// A loader over `dataset`.
    ///
    /// - Throws: ``LoaderError`` or ``SamplerError`` for a batch size, thread count, prefetch,
    ///   rank or world size that cannot be used.
    public init(_ dataset: Dataset, options: LoaderOptions) throws {
        guard options.batchSize >= 1, options.batchSize <= Int(Int32.max) else {
            throw LoaderError("batch size is \(options.batchSize); pass 1 to \(Int32.max)")
        }
        if let threads = options.threads, threads < 1 || threads > 1024 {
            throw LoaderError("threads is \(threads); pass 1 to 1024, or nil for auto")
        }
        if let prefetch = options.prefetch, prefetch < 1 || prefetch > 1 << 20 {
            throw LoaderError("prefetch is \(prefetch) batches; pass 1 to \(1 << 20), or nil for auto")
        }
        self.dataset = dataset
        self.options = options
        openedInProcess = getpid()
        _ = try plan(epoch: 0, start: 0, ordered: false)
    }

    /// In a forked child the reader threads do not exist: nothing is stopped or joined there.
    deinit { run?.stop() }

    /// Refuses a process other than the one that made the loader (a forked child).
    private func checkProcess() throws {
        let pid = getpid()
        guard pid == openedInProcess else {
            throw LoaderError(
                "this loader was made in process \(openedInProcess), and process \(pid) is a fork of it, without its "
                    + "reader threads; make the loader after forking (in each worker process)")
        }
    }

    /// The epoch the loader reads (0 until ``setEpoch(_:)``).
    public var epoch: Int { lock.withLock { epochNumber } }

    /// Starts epoch `epoch` from its beginning (also to read the same epoch again); stops the
    /// reader threads of the one in progress.
    ///
    /// - Throws: ``SamplerError`` when `epoch` is negative.
    public func setEpoch(_ epoch: Int) throws {
        try checkProcess()
        guard epoch >= 0 else { throw SamplerError("epoch is \(epoch); epochs count from 0") }
        let old = lock.withLock {
            epochNumber = epoch
            start = 0
            defer {
                lastChoice = run?.choice ?? lastChoice
                run = nil
            }
            return run
        }
        old?.stop()
    }

    /// The number of batches this epoch yields (from where it starts: a restored state's position).
    public var count: Int {
        lock.withLock { (try? plan(epoch: epochNumber, start: start, ordered: false))?.count ?? 0 }
    }

    /// Where the loader is: the seed, the epoch, and the positions consumed by all ranks, after
    /// the batches ``next()`` has returned so far.
    public var state: LoaderState {
        lock.withLock {
            LoaderState(
                seed: options.seed, epoch: epochNumber, consumed: run?.consumed ?? start,
                worldSize: options.worldSize)
        }
    }

    /// Continues from `state`: its epoch, from the position it had consumed. The world size may
    /// differ from the one that saved it: the epoch's permutation is the same, and this rank's
    /// share of what is left starts at the saved position.
    ///
    /// - Throws: ``LoaderError`` when the state's seed is not this loader's or its position is
    ///   past the epoch (another selection).
    public func restore(_ state: LoaderState) throws {
        try checkProcess()
        guard state.seed == options.seed else {
            throw LoaderError(
                "the saved state has seed \(state.seed) but this loader \(options.seed); make the loader with the saved seed"
            )
        }
        _ = try plan(epoch: state.epoch, start: state.consumed, ordered: false)
        let old = lock.withLock {
            epochNumber = state.epoch
            start = state.consumed
            defer {
                lastChoice = run?.choice ?? lastChoice
                run = nil
            }
            return run
        }
        old?.stop()
    }

    /// The next batch of the epoch, in order; nil when the epoch is done (then ``setEpoch(_:)``).
    ///
    /// - Throws: what reading or collating that batch threw (the following call goes on with the
    ///   next batch); ``LoaderError`` in a process forked from the one that made the loader.
    public func next() throws -> CollatedBatch? {
        try checkProcess()
        let current: LoaderRun = try lock.withLock {
            if let run { return run }
            let made = try LoaderRun(
                dataset: dataset, options: options, batches: plan(epoch: epochNumber, start: start, ordered: true))
            run = made
            return made
        }
        return try current.take()
    }

    /// Stops the reader threads (the loader starts them again on the next ``next()``, from the
    /// start of the epoch or the restored position).
    public func close() {
        guard getpid() == openedInProcess else { return }
        let old = lock.withLock {
            defer {
                lastChoice = run?.choice ?? lastChoice
                run = nil
            }
            return run
        }
        old?.stop()
    }

    /// What the loader chose, as numbers: the reader threads and the prefetch window (in batches)
    /// of the epoch in progress or the last one, and whether auto added threads while the
    /// consumer waited. Zeros before the first ``next()``.
    ///
    /// ```swift
    /// while let batch = try loader.next() { train(batch) }
    /// let (threads, prefetch, _) = loader.choice   // (2, 4, false) with auto on a small epoch
    /// ```
    ///
    /// - Complexity: O(1).
    public var choice: (threads: Int, prefetch: Int, threadsAdded: Bool) {
        let made = lock.withLock { run?.choice ?? lastChoice ?? (0, 0, false, false) }
        return (made.threads, made.prefetch, made.grew)
    }

    /// What the loader chose: its threads and prefetch, and what auto tried.
    public var report: String {
        let made = lock.withLock { run?.choice ?? lastChoice ?? (0, 0, false, false) }
        let auto = options.threads == nil ? "auto, " : ""
        let prefetchAuto = options.prefetch == nil ? "auto, " : ""
        let note =
            made.grew
            ? " (added while the consumer waited)"
            : made.dropped ? " (one more was tried while the consumer waited: no faster)" : ""
        return "threads \(auto)\(made.threads)\(note); "
            + "prefetch \(prefetchAuto)\(made.prefetch) batch\(made.prefetch == 1 ? "" : "es")"
    }

    /// The batches of `epoch` from `start`. Unordered (`ordered: false`) gives the same counts
    /// and checks in O(1), without the shuffle's permutation (O(samples)): for ``count`` and the
    /// argument checks; the epoch's run builds the real order.
    private func plan(epoch: Int, start: Int, ordered: Bool) throws -> Batches {
        let order = try EpochOrder(
            count: dataset.count, order: ordered ? options.order : .sequential, seed: options.seed, epoch: epoch)
        if !ordered { _ = try EpochOrder(count: 0, order: options.order, seed: options.seed, epoch: epoch) }
        let share = try RankShare(
            order, rank: options.rank, worldSize: options.worldSize, start: start, tail: options.tail)
        return try Batches(share, batchSize: options.batchSize, dropLast: options.dropLast)
    }
}

extension SampleLease: CollatableSample {}

/// One pass over an epoch's batches: reader threads claim batches in order, read and collate
/// them, and the consumer takes them in order.
final class LoaderRun: @unchecked Sendable {
    let dataset: Dataset
    let options: LoaderOptions
    let batches: Batches
    let pid: pid_t
    private let monitor = Monitor()
    private var nextToClaim = 0
    private var nextToDeliver = 0
    private var ready: [Int: Result<CollatedBatch, any Error>] = [:]
    private var window: Int
    private var stopping = false
    private var threads: [WorkerThread] = []
    /// Reader threads that may claim batches (the others, started by auto, wait parked).
    private var active: Int
    private let maxThreads: Int
    // Auto threads (see tune(waited:)).
    private var waitedRecently: [Bool] = []
    /// The batch number after which auto counts the consumer's waits (the window filled).
    private var settledAfter = 0
    /// When each of the last batches was delivered (monotonic nanoseconds).
    private var deliveredAt: [UInt64] = []
    /// A thread added on trial: kept when the consumer gets batches faster by the batch `until`.
    private var probe: (until: Int, before: Double)?
    private var capped = false
    private var grew = false
    private var dropped = false
    /// Batches over which auto measures the delivery rate.
    private static let probeSpan = 16

    init(dataset: Dataset, options: LoaderOptions, batches: Batches) throws {
        self.dataset = dataset
        self.options = options
        self.batches = batches
        pid = getpid()
        let processors = ParallelLoop.processorCount
        maxThreads = options.threads ?? processors
        // Auto starts with one reader: the consumer needs a processor too (a Python loop hashing or
        // decoding), and readers it does not need only take processor time from it.
        let first = options.threads ?? 1
        active = first
        window = options.prefetch ?? 2 * first
        settledAfter = window
        for _ in 0..<first { try addThread() }
    }

    /// The threads and prefetch in use, whether auto added threads, and whether it tried one more
    /// and took it back (no faster).
    var choice: (threads: Int, prefetch: Int, grew: Bool, dropped: Bool) {
        monitor.withLock { (active, window, grew, dropped) }
    }

    /// The positions consumed by all ranks after the batches delivered so far.
    var consumed: Int {
        monitor.withLock {
            let taken = nextToDeliver == 0 ? 0 : batches.range(nextToDeliver - 1).upperBound
            return batches.share.consumed(afterTaking: taken)
        }
    }

    private func addThread() throws {
        let id = threads.count
        guard let thread = WorkerThread({ [self] in work(id) }) else {
            if threads.isEmpty { throw LoaderError("cannot start a reader thread; the process has too many threads") }
            return
        }
        threads.append(thread)
    }

    /// Stops the threads and waits for them (in the process that started them; a forked child,
    /// which has none of them, leaves them be).
    func stop() {
        guard getpid() == pid else { return }
        let all = monitor.withLock {
            stopping = true
            monitor.broadcast()
            return threads
        }
        for thread in all { thread.join() }
    }

    /// The next batch in order, nil at the end.
    func take() throws -> CollatedBatch? {
        let result: Result<CollatedBatch, any Error>? = monitor.withLock {
            guard nextToDeliver < batches.count else { return nil }
            var waited = false
            while ready[nextToDeliver] == nil {
                waited = true
                // Waiting without the host's guard: a fork may pass while the readers work.
                options.hooks?.leave()
                monitor.wait()
                options.hooks?.enter()
            }
            let result = ready.removeValue(forKey: nextToDeliver)!
            nextToDeliver += 1
            tune(waited: waited)
            monitor.broadcast()
            return result
        }
        return try result?.get()
    }

    /// Auto threads: grow while more readers make the consumer faster. When the consumer waited
    /// for 2 of the last 8 batches (counting only after the prefetch window first filled: waits
    /// while the pipeline fills say nothing), one more reader is tried; it stays if the batches
    /// then come at least 5% faster, otherwise it is parked and auto stops trying (a consumer
    /// that needs a processor of its own, a Python loop, gains nothing from readers that take it).
    private func tune(waited: Bool) {
        guard options.threads == nil else { return }
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        deliveredAt.append(UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec))
        if deliveredAt.count > Self.probeSpan + 1 { deliveredAt.removeFirst() }
        if let trial = probe {
            guard nextToDeliver >= trial.until, let after = rate() else { return }
            probe = nil
            if after < trial.before * 1.05 {
                active -= 1
                capped = true
                dropped = true
            } else {
                grew = true
            }
            if options.prefetch == nil { window = 2 * active }
            waitedRecently.removeAll()
            settledAfter = nextToDeliver
            return
        }
        guard !capped, active < maxThreads, nextToDeliver > settledAfter else { return }
        waitedRecently.append(waited)
        if waitedRecently.count > 8 { waitedRecently.removeFirst() }
        guard waitedRecently.count >= 4, waitedRecently.filter({ $0 }).count >= 2, let before = rate() else { return }
        if threads.count <= active {
            guard (try? addThread()) != nil, threads.count > active else {
                capped = true
                return
            }
        }
        active += 1
        if options.prefetch == nil { window = 2 * active }
        probe = (until: nextToDeliver + window + Self.probeSpan, before: before)
    }

    /// Batches per second over the last `probeSpan` deliveries, when there were that many.
    private func rate() -> Double? {
        guard deliveredAt.count > Self.probeSpan, let last = deliveredAt.last, let first = deliveredAt.first,
            last > first
        else { return nil }
        return Double(Self.probeSpan) / (Double(last - first) / 1e9)
    }

    /// Reader thread `id`: claims the next batch while it is among the active readers and the
    /// batch is within the prefetch window.
    private func work(_ id: Int) {
        while true {
            let claimed: Int? = monitor.withLock {
                while !stopping, nextToClaim < batches.count, id >= active || nextToClaim >= nextToDeliver + window {
                    monitor.wait()
                }
                guard !stopping, nextToClaim < batches.count else { return nil }
                defer { nextToClaim += 1 }
                return nextToClaim
            }
            guard let b = claimed else { return }
            // The host's guard only while reading: never while waiting on the monitor.
            options.hooks?.enter()
            let result = Result { try produce(b) }
            options.hooks?.leave()
            monitor.withLock {
                ready[b] = result
                monitor.broadcast()
            }
        }
    }

    private func produce(_ b: Int) throws -> CollatedBatch {
        var leases: [SampleLease] = []
        let range = batches.range(b)
        leases.reserveCapacity(range.count)
        // Remote shards: the batch's range requests go out together, many in flight.
        let window = dataset.fetchWindow(
            range.lazy.map { self.batches.share[$0] }, requestsInFlight: dataset.remoteRequestsInFlight)
        for j in range {
            let lease = try dataset.lease(at: batches.share[j], window: window)
            if let filter = options.filter, !filter(lease) { continue }
            leases.append(lease)
        }
        let batch = BatchCollator.collate(leases, mode: options.collate)
        if let map = options.map { return try map(batch) }
        return batch
    }
}

import ArgumentParser
import ShardStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension LoadingStrategy: ExpressibleByArgument {}
extension CollateMode: ExpressibleByArgument {}

/// The options every reading command shares: what to read and how.
struct ReadOptions: ParsableArguments {
    @Option(help: "Read only this split's samples, in split order.")
    var split: String?

    @Option(
        name: .customLong("ext"),
        help: ArgumentHelp("Read only members with this extension (repeatable: --ext jpg --ext cls).", valueName: "ext")
    )
    var extensions: [String] = []

    @Option(
        help: ArgumentHelp(
            "How bytes are read: auto, memory (preload into RAM), mmap (map the shards), pread (read per sample) or remote (one range request per sample, for s3:// and https:// shards).",
            valueName: "strategy"))
    var strategy: LoadingStrategy = .auto

    @Option(
        help: ArgumentHelp(
            "The memory auto may count on, instead of what the system reports (512M, 2G; also SHARDSTORE_MEMORY_LIMIT).",
            valueName: "size"))
    var memoryLimit: String?

    @Option(
        help: ArgumentHelp(
            "How positions are resolved: auto, table (an in-memory location table built at open), file (the location file beside the index, read with pread: the least memory) or statements (SQLite lookups).",
            valueName: "lookup"))
    var lookup: LookupChoice = .auto

    @Flag(help: "Print the strategy, its reason and the timings to stderr.")
    var verbose = false

    @OptionGroup(title: "Remote shards") var remote: RemoteOptions

    @OptionGroup(title: "Cache folder") var cache: CacheOptions

    /// The dataset options: `--memory-limit` overrides the system's figures and the environment;
    /// `--cache` and `--cache-limit` name the cache folder.
    func datasetOptions() throws -> Dataset.Options {
        var options = Dataset.Options(lookup: lookup.mode, remote: try remote.configuration())
        try cache.apply(to: &options)
        if let memoryLimit {
            var figures = try MemoryProbe.read()
            figures.override = try MemoryProbe.parseSize(memoryLimit)
            figures.overrideName = "--memory-limit"
            options.memory = figures
        }
        return options
    }

    /// Opens the dataset; `verifiesHeaders` false only for `bench --no-header-check`; `access`
    /// `.sequential` for a pass (`bench --sequential`).
    func open(_ index: String, verifiesHeaders: Bool = true, access: Dataset.AccessPattern = .random) throws
        -> Dataset
    {
        var options = try datasetOptions()
        options.verifiesHeaders = verifiesHeaders
        options.access = access
        return try Dataset(
            index: index, split: split, extensions: extensions.isEmpty ? nil : extensions, strategy: strategy,
            options: options)
    }
}

/// `--lookup`.
enum LookupChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, table, file, statements

    var mode: Dataset.LookupMode {
        switch self {
        case .auto: return .auto
        case .table: return .table
        case .file: return .file
        case .statements: return .statements
        }
    }
}

extension JSONObject {
    /// `strategy`, `reason`, `lookup` and, with the table, `table_bytes`.
    mutating func add(_ choice: StrategyChoice, _ lookup: Dataset.Lookup) {
        add("strategy", string: choice.strategy.rawValue)
        add("reason", string: choice.reason(.commandLine))
        switch lookup {
        case .table(let bytes):
            add("lookup", string: "table")
            add("table_bytes", int: bytes)
        case .file(let path):
            add("lookup", string: "file")
            add("location_file", string: path)
        case .statements: add("lookup", string: "statements")
        }
    }

    /// How every bench mode's object ends: `bytes`, `peak_rss_mb`, `touch`, `checksum`, `header_check`.
    mutating func add(_ result: Checksummer.Result, peakRSS: Double, headerCheck: Bool) {
        add("bytes", int: result.bytes)
        add("peak_rss_mb", Format.fixed(peakRSS, 1))
        add("touch", string: result.touch.rawValue)
        add("checksum", "\(result.checksum)")
        add("header_check", bool: headerCheck)
    }
}

/// How a dataset resolves positions, for people.
func describe(_ lookup: Dataset.Lookup) -> String {
    switch lookup {
    case .table(let bytes): return "in-memory location table (\(Format.bytes(bytes)))"
    case .file(let path): return "location file '\(path)' (read with pread; no table in memory)"
    case .statements: return "SQLite statements"
    }
}

struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Write members' bytes to stdout in index order, for piping into other tools.",
        discussion: """
            Writes every member of every sample, samples in index order (split order with --split), each sample's members in archive order, with nothing between them. --ext limits it to some extensions, so that `--ext json` gives the JSON documents back to back.

            Examples:
              shardstore cat ds/index.sqlite --split val --ext txt > val.txt
              shardstore cat ds/index.sqlite --ext cls | sort | uniq -c
              shardstore cat s3.sqlite --ext json --cache /scratch/cache > all.json
            """)

    @Argument(help: "The index file.")
    var index: String

    @OptionGroup var read: ReadOptions

    func run() throws {
        try reportingErrors {
            let clock = ContinuousClock()
            let start = clock.now
            // One pass: nothing preloaded; compressed shards decompressed ahead of it.
            let dataset = try read.open(index, access: .sequential)
            if read.verbose { Terminal.stderrLine("strategy: \(dataset.choice.reason(.commandLine))") }
            var bytes = 0
            func write(_ view: SampleView) {
                for member in view {
                    Terminal.write(bytes: member.bytes)
                    bytes += member.bytes.count
                }
            }
            if read.split == nil {
                // Position order is storage order: a pass, with its read-ahead.
                struct StdoutFailed: Error {}
                do {
                    try dataset.forEachSample { view in
                        write(view)
                        if Terminal.failed { throw StdoutFailed() }
                    }
                } catch is StdoutFailed {}
            } else {
                for p in 0..<dataset.count {
                    try dataset.withSample(at: p) { write($0) }
                    if Terminal.failed { break }
                }
            }
            try Terminal.flush()
            if read.verbose {
                let seconds = (clock.now - start).seconds
                Terminal.stderrLine(
                    "wrote \(Format.bytes(Int64(bytes))) of \(Format.count(dataset.count, "sample")) in \(Format.fixed(seconds, 3)) s"
                )
            }
        }
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Time reads through a dataset: random samples, a sequential pass or a loader epoch; crc32 over the bytes.",
        discussion: """
            Reads every member of each sample visited and runs zlib's crc32 over all of its bytes, chained in visit order (members in archive order), as the peer readers ShardStore is measured against do (webdataset, wids, ratarmountcore, and a C pread/mmap loop over the tars), so the work and the checksum are the same; tools/bench in a ShardStore checkout runs them side by side. Opening the dataset (building the location table and, for memory, the preload) is timed apart from the reads. --touch pages sums the bytes at offsets 0, 4096, 8192, ... of each member instead (as the C loop's `none` touch over mmap does, so their checksums agree): the reads without the hashing, to compare with tools that do no work per byte, such as `zstd -dc > /dev/null`.

            Pick the samples with one of:
              --random K [--seed N]   K positions drawn with SplitMix64 from seed N
              --indices FILE          positions from a file of little-endian int64 (tools/bench writes one and hands it to every peer)
              --sequential            every sample, shard by shard, front to back (with --strategy auto: nothing is preloaded, positions come from the location file, and compressed shards are decompressed a few MiB ahead of the pass on a thread of their own)
              --loader --batch-size B one epoch through the data loader, in batches of B

            Prints samples/s, MB/s (10^6 bytes of members), peak RSS and the strategy with its reason; --json prints one JSON object with samples_per_s, mb_per_s, peak_rss_mb, strategy, reason, checksum, open_s, run_s, k, bytes.

            With --loader, the order is sequential, --shuffle (a global shuffle) or --locality-shuffle BLOCK[,WINDOW] (blocks of BLOCK consecutive samples shuffled, then the samples within each run of WINDOW blocks; WINDOW is 1 when left out), seeded by --seed and --epoch; reader threads (--threads) read batches ahead of the consumer (--prefetch; both auto when left out), --drop-last leaves out a short last batch, --collate picks native (.npy of one dtype and shape stacked, integer .cls as int64 labels, the rest bytes) or bytes (every member as bytes). Each batch is hashed on the reader thread that read it (as a map would: the work grows with --threads), and the batches' checksums are joined in batch order with crc32_combine: a batch is hashed sample by sample, and in a sample column by column (extensions in the order they first appear in the batch), a bytes column's member (nothing when the sample has none), a stacked .npy column's row (the sample's array data without its header, C order, little-endian), a label's 8 bytes (int64, this machine's byte order). With --collate bytes and the same extension order in every sample, that is each sample's members in archive order, as the other modes hash. It prints samples/s, batches/s, MB/s (of the bytes hashed), the first batch's latency (from starting the epoch to the first batch returned), the batches and samples of the epoch, peak RSS, the strategy and what the loader chose; --json has the other modes' keys but k, samples is the samples read in the epoch, and it adds batches_per_s, first_batch_s, batches, batch_size, order, seed, epoch, drop_last, collate, threads, prefetch and loader (what the loader chose). open_s includes making the loader.

            Examples:
              shardstore bench ds/index.sqlite --random 20000
              shardstore bench ds/index.sqlite --sequential --strategy pread --json
              shardstore bench ds/index.sqlite --loader --batch-size 256 --shuffle --seed 1
              shardstore bench s3.sqlite --sequential --cache /scratch/cache --verbose
              SHARDSTORE_MEMORY_LIMIT=256M shardstore bench ds/index.sqlite --random 20000 --verbose
            """)

    @Argument(help: "The index file.")
    var index: String

    @OptionGroup var read: ReadOptions

    @Option(help: ArgumentHelp("Read K random samples (at most 100,000,000).", valueName: "K"))
    var random: Int?

    @Option(help: "The seed for --random and for the loader's shuffles.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Read the positions in FILE (little-endian int64).", valueName: "file"))
    var indices: String?

    @Flag(help: "Read every sample in storage order.")
    var sequential = false

    @Option(
        help:
            "Read with this many threads, 1 to 1024 (the checksum does not change); 1 when left out, and with --loader the reader threads (auto when left out)."
    )
    var threads: Int?

    @Option(
        help: ArgumentHelp(
            "With --random or --indices on remote shards: range requests each thread keeps in flight, 1 to 1024, sent together through libcurl's multi interface (1 when left out: one request at a time).",
            valueName: "N"))
    var inFlight: Int?

    @Flag(help: "Read one epoch through the data loader, in batches (see --batch-size).")
    var loader = false

    @Option(help: ArgumentHelp("With --loader: samples per batch.", valueName: "B"))
    var batchSize: Int?

    @Flag(help: "With --loader: a global shuffle, seeded by --seed and --epoch.")
    var shuffle = false

    @Option(
        help: ArgumentHelp(
            "With --loader: shuffle blocks of BLOCK consecutive samples, then the samples within each run of WINDOW blocks (WINDOW is 1 when left out).",
            valueName: "BLOCK[,WINDOW]"))
    var localityShuffle: String?

    @Option(
        help: ArgumentHelp(
            "With --loader: the epoch to read (0 when left out); it changes the shuffles.", valueName: "E"))
    var epoch: Int?

    @Option(
        help: ArgumentHelp(
            "With --loader: batches read ahead of the consumer (auto when left out: twice the threads).",
            valueName: "N"))
    var prefetch: Int?

    @Flag(help: "With --loader: leave out the epoch's last batch when it is short.")
    var dropLast = false

    @Option(
        help: ArgumentHelp(
            "With --loader: native (stack .npy arrays, .cls as int64 labels) or bytes (every member as bytes).",
            valueName: "mode"))
    var collate: CollateMode?

    @Option(
        help: ArgumentHelp(
            "What each member's bytes go through: crc32 (zlib's crc32 over every byte, chained; the default) or pages (the sum of the bytes at offsets 0, 4096, 8192, ... of each member: the reads without the hashing). Not with --loader.",
            valueName: "touch"))
    var touch: Touch = .crc32

    @Flag(help: "Print one JSON object.")
    var json = false

    /// The most positions `--random` draws: 100 million (800 MB of positions).
    static let maxRandom = 100_000_000
    @Flag(
        help:
            "Do not check each member's own tar header on read. This exists only to measure what the check costs; without it a shard swapped for another of the same size and modification time is read without notice."
    )
    var noHeaderCheck = false

    func validate() throws {
        try validateLoaderOptions()
        let modes = [random != nil, indices != nil, sequential, loader].filter { $0 }.count
        if modes != 1 {
            throw ValidationError("Please give exactly one of --random K, --indices FILE, --sequential or --loader.")
        }
        if let random, random < 1 { throw ValidationError("--random needs a positive count, got \(random).") }
        if let random, random > Self.maxRandom {
            throw ValidationError(
                "Please give --random at most \(Self.maxRandom) (the positions are drawn up front, 8 bytes each), got \(random); run bench several times for more."
            )
        }
        if loader, touch != .crc32 {
            throw ValidationError(
                "--touch \(touch.rawValue) applies to --random, --indices and --sequential; --loader hashes with crc32."
            )
        }
        if let threads, threads < 1 { throw ValidationError("--threads needs a positive count, got \(threads).") }
        if let threads, threads > CLILimits.maxThreads {
            throw ValidationError("Please give --threads at most \(CLILimits.maxThreads), got \(threads).")
        }
        if let inFlight {
            guard (1...CLILimits.maxThreads).contains(inFlight) else {
                throw ValidationError(
                    "Please give --in-flight between 1 and \(CLILimits.maxThreads) requests, got \(inFlight).")
            }
            guard random != nil || indices != nil else {
                throw ValidationError("--in-flight applies to --random and --indices; leave it out.")
            }
        }
    }

    func run() throws {
        try reportingErrors {
            let clock = ContinuousClock()
            let opening = clock.now
            let dataset = try read.open(
                index, verifiesHeaders: !noHeaderCheck, access: sequential ? .sequential : .random)
            if loader { return try runLoader(dataset, opening: opening) }
            let openSeconds = (clock.now - opening).seconds
            if read.verbose { Terminal.stderrLine("strategy: \(dataset.choice.reason(.commandLine))") }
            let positions = try chosenPositions(dataset)
            let threads = self.threads ?? 1
            let started = clock.now
            let inFlight = self.inFlight ?? 1
            let result = try Checksummer.run(
                dataset, positions: positions, threads: threads, inFlight: inFlight, touch: touch)
            let runSeconds = max((clock.now - started).seconds, 1e-9)
            let samples = positions?.count ?? dataset.count
            let rss = peakRSSMebibytes()
            if json {
                var o = JSONObject()
                o.add("tool", string: "shardstore")
                o.add("mode", string: sequential ? "sequential" : "random")
                o.add(dataset.choice, dataset.lookup)
                o.add("samples", int: dataset.count)
                o.add("k", int: samples)
                o.add("threads", int: threads)
                if positions != nil { o.add("in_flight", int: inFlight) }
                o.add("open_s", Format.fixed(openSeconds, 4))
                o.add("run_s", Format.fixed(runSeconds, 4))
                o.add("samples_per_s", Format.fixed(Double(samples) / runSeconds, 1))
                o.add("mb_per_s", Format.fixed(Double(result.bytes) / runSeconds / 1e6, 1))
                o.add(result, peakRSS: rss, headerCheck: dataset.verifiesHeaders)
                Terminal.line(o.text)
            } else {
                Self.printStrategy(dataset)
                Terminal.line("opened in  \(Format.fixed(openSeconds, 3)) s")
                Terminal.line(
                    "read       \(Format.count(samples, "sample")) (\(Format.bytes(result.bytes))) in \(Format.fixed(runSeconds, 3)) s with \(Format.count(threads, "thread"))"
                )
                Terminal.line(
                    "rate       \(Format.count(Int((Double(samples) / runSeconds).rounded()))) samples/s, \(Format.fixed(Double(result.bytes) / runSeconds / 1e6, 1)) MB/s"
                )
                Self.printChecksum(result, peakRSS: rss, dataset)
            }
            try Terminal.flush()
        }
    }

    /// The lines every mode's text starts with: the strategy with its reason, and the lookup.
    static func printStrategy(_ dataset: Dataset) {
        Terminal.line("strategy   \(dataset.strategy.rawValue) (\(dataset.choice.reason(.commandLine)))")
        Terminal.line("lookup     \(describe(dataset.lookup))")
    }

    /// The lines every mode's text ends with: peak RSS, the checksum, and headers not checked.
    static func printChecksum(_ result: Checksummer.Result, peakRSS: Double, _ dataset: Dataset) {
        Terminal.line("peak RSS   \(Format.fixed(peakRSS, 1)) MiB")
        Terminal.line("checksum   \(result.checksum) (\(result.touch == .crc32 ? "crc32" : "page sum"))")
        if !dataset.verifiesHeaders { Terminal.line("headers    not checked (--no-header-check)") }
    }

    /// The positions to read, or nil for a sequential pass.
    func chosenPositions(_ dataset: Dataset) throws -> [Int]? {
        if let indices {
            let positions = try IndicesFile.read(indices)
            if let bad = positions.firstIndex(where: { $0 < 0 || $0 >= dataset.count }) {
                throw IndexError.invalidArgument(
                    "\(indices): entry \(bad) is \(positions[bad]), outside the dataset's 0 to \(dataset.count - 1); write the file for this dataset"
                )
            }
            return positions
        }
        if let random {
            guard dataset.count > 0 else {
                throw IndexError.invalidArgument(
                    "--random needs samples, and \(dataset.split.map { "split '\($0)'" } ?? "the dataset") has none")
            }
            var rng = SplitMix64(seed: seed)
            return (0..<random).map { _ in Int(rng.next(below: UInt64(dataset.count))) }
        }
        return nil
    }
}

/// Upper bounds for numeric options that size threads or allocations: a larger value is an
/// invalid argument (exit 64), never an attempt to allocate or start that many.
enum CLILimits {
    /// The most threads (`bench --threads`) or parallel scans (`ingest --jobs`).
    static let maxThreads = 1024
    /// The largest `bench --loader --batch-size` and `--prefetch`: far past what memory holds
    /// (a batch holds its samples' bytes), and clear of the batch arithmetic's overflow.
    static let maxBatches = 100_000_000
}

/// A file of little-endian int64 positions.
enum IndicesFile {
    static func read(_ path: String) throws -> [Int] {
        let file = try ReadOnlyFile(path: path)
        let size = Int(file.status.size)
        guard size % 8 == 0 else {
            throw IndexError.invalidArgument(
                "\(path) is \(size) bytes, not a whole number of 8-byte little-endian int64 positions")
        }
        let bytes = try file.read(count: size, at: 0)
        return stride(from: 0, to: size, by: 8).map { i in
            var v: UInt64 = 0
            for b in 0..<8 { v |= UInt64(bytes[i + b]) << (8 * UInt64(b)) }
            return Int(Int64(bitPattern: v))
        }
    }
}

/// What `bench` does with each member's bytes.
enum Touch: String, ExpressibleByArgument, CaseIterable {
    /// zlib's crc32 over every byte, chained in visit order: the peers' work and checksum.
    case crc32
    /// The sum of the bytes at offsets 0, 4096, 8192, ... of each member (as a 64-bit integer
    /// that wraps): every page of every member is reached, and nothing is hashed. The C loop's
    /// `none` over mmap sums the same bytes, so the checksums agree.
    case pages
}

/// Reads samples and chains zlib's crc32 over their members' bytes (or sums a byte a page).
enum Checksummer {
    struct Result {
        var crc: UInt32 = 0
        var bytes: Int64 = 0
        var touch: Touch = .crc32
        var pageSum: UInt64 = 0

        /// What `bench` prints: the crc32, or the page sum.
        var checksum: UInt64 { touch == .crc32 ? UInt64(crc) : pageSum }

        /// This result followed by `next` (read after it).
        func joined(_ next: Result) -> Result {
            Result(
                crc: Zlib.crc32Combine(crc, next.crc, length2: next.bytes), bytes: bytes + next.bytes, touch: touch,
                pageSum: pageSum &+ next.pageSum)
        }
    }

    /// Reads `positions` (every sample in storage order when nil) with `threads` threads, as many
    /// as asked whatever the processor count (POSIX threads: with remote shards, each keeps a
    /// request in flight; Dispatch would run about one per processor). Each thread checksums a
    /// contiguous part; the parts are joined with `crc32_combine` (or added, for `.pages`), so the
    /// result equals one thread's. With `inFlight` above 1, each thread sends the range requests of
    /// that many remote samples at once (``Dataset/withSamples(at:requestsInFlight:_:)``).
    static func run(
        _ dataset: Dataset, positions: [Int]?, threads: Int, inFlight: Int = 1, touch: Touch = .crc32
    ) throws -> Result {
        let empty = Result(touch: touch)
        if threads == 1 {
            var result = empty
            if let positions {
                try dataset.withSamples(at: positions, requestsInFlight: inFlight) { add($0, to: &result) }
            } else {
                try dataset.forEachSample { add($0, to: &result) }
            }
            return result
        }
        let order = positions ?? dataset.storageOrder()
        let parts = (0..<threads).map { t in (order.count * t / threads)..<(order.count * (t + 1) / threads) }
        let results = Mutex([Result?](repeating: nil, count: threads))
        let failure = Mutex<(any Error)?>(nil)
        ParallelLoop.run(iterations: threads, width: threads) { t in
            var part = empty
            do {
                try dataset.withSamples(at: parts[t].lazy.map { order[$0] }, requestsInFlight: inFlight) {
                    add($0, to: &part)
                }
                results.withLock { $0[t] = part }
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return results.withLock { parts in parts.reduce(empty) { $0.joined($1!) } }
    }

    @inline(__always)
    static func add(_ view: SampleView, to result: inout Result) {
        for member in view {
            result.bytes += Int64(member.bytes.count)
            switch result.touch {
            case .crc32:
                result.crc = Zlib.crc32(result.crc, member.bytes)
            case .pages:
                var sum = result.pageSum
                for i in stride(from: 0, to: member.bytes.count, by: 4096) { sum &+= UInt64(member.bytes[i]) }
                result.pageSum = sum
            }
        }
    }
}

/// This process's peak resident set size in MiB: `VmHWM` (see
/// ``MemoryProbe/peakResidentBytes()``), or `ru_maxrss` where there is no `/proc`.
func peakRSSMebibytes() -> Double {
    if let bytes = MemoryProbe.peakResidentBytes() { return Double(bytes) / 1_048_576 }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

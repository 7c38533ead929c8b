import ArgumentParser
import Dispatch
import ShardStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension LoadingStrategy: ExpressibleByArgument {}

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
            "How bytes are read: auto, memory (preload into RAM), mmap (map the shards) or pread (read per sample).",
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

    /// The dataset options: `--memory-limit` overrides the system's figures and the environment.
    func datasetOptions() throws -> Dataset.Options {
        var options = Dataset.Options(lookup: lookup.mode)
        if let memoryLimit {
            var figures = try MemoryProbe.read()
            figures.override = try MemoryProbe.parseSize(memoryLimit)
            figures.overrideName = "--memory-limit"
            options.memory = figures
        }
        return options
    }

    /// Opens the dataset; `verifiesHeaders` false only for `bench --no-header-check`.
    func open(_ index: String, verifiesHeaders: Bool = true) throws -> Dataset {
        var options = try datasetOptions()
        options.verifiesHeaders = verifiesHeaders
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
            """)

    @Argument(help: "The index file.")
    var index: String

    @OptionGroup var read: ReadOptions

    func run() throws {
        try reportingErrors {
            let clock = ContinuousClock()
            let start = clock.now
            let dataset = try read.open(index)
            if read.verbose { Terminal.stderrLine("strategy: \(dataset.choice.reason(.commandLine))") }
            var bytes = 0
            for p in 0..<dataset.count {
                try dataset.withSample(at: p) { view in
                    for member in view {
                        Terminal.write(bytes: member.bytes)
                        bytes += member.bytes.count
                    }
                }
                if Terminal.failed { break }
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
        abstract: "Time reads through a dataset: random samples or a sequential pass, crc32 over every byte.",
        discussion: """
            Reads every member of each sample visited and runs zlib's crc32 over all of its bytes, chained in visit order (members in archive order), as the peer readers ShardStore is measured against do (webdataset, wids, ratarmountcore, and a C pread/mmap loop over the tars), so the work and the checksum are the same; tools/bench in a ShardStore checkout runs them side by side. Opening the dataset (building the location table and, for memory, the preload) is timed apart from the reads.

            Pick the samples with one of:
              --random K [--seed N]   K positions drawn with SplitMix64 from seed N
              --indices FILE          positions from a file of little-endian int64 (tools/bench writes one and hands it to every peer)
              --sequential            every sample, shard by shard, front to back

            Prints samples/s, MB/s (10^6 bytes of members), peak RSS and the strategy with its reason; --json prints one JSON object with samples_per_s, mb_per_s, peak_rss_mb, strategy, reason, checksum, open_s, run_s, k, bytes.

            Examples:
              shardstore bench ds/index.sqlite --random 20000
              shardstore bench ds/index.sqlite --sequential --strategy pread --json
              SHARDSTORE_MEMORY_LIMIT=256M shardstore bench ds/index.sqlite --random 20000 --verbose
            """)

    @Argument(help: "The index file.")
    var index: String

    @OptionGroup var read: ReadOptions

    @Option(help: ArgumentHelp("Read K random samples (at most 100,000,000).", valueName: "K"))
    var random: Int?

    @Option(help: "The seed for --random.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Read the positions in FILE (little-endian int64).", valueName: "file"))
    var indices: String?

    @Flag(help: "Read every sample in storage order.")
    var sequential = false

    @Option(help: "Read with this many threads, 1 to 1024 (the checksum does not change).")
    var threads = 1

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
        let modes = [random != nil, indices != nil, sequential].filter { $0 }.count
        if modes != 1 {
            throw ValidationError("Please give exactly one of --random K, --indices FILE or --sequential.")
        }
        if let random, random < 1 { throw ValidationError("--random needs a positive count, got \(random).") }
        if let random, random > Self.maxRandom {
            throw ValidationError(
                "Please give --random at most \(Self.maxRandom) (the positions are drawn up front, 8 bytes each), got \(random); run bench several times for more."
            )
        }
        if threads < 1 { throw ValidationError("--threads needs a positive count, got \(threads).") }
        if threads > CLILimits.maxThreads {
            throw ValidationError("Please give --threads at most \(CLILimits.maxThreads), got \(threads).")
        }
    }

    func run() throws {
        try reportingErrors {
            let clock = ContinuousClock()
            let opening = clock.now
            let dataset = try read.open(index, verifiesHeaders: !noHeaderCheck)
            let openSeconds = (clock.now - opening).seconds
            if read.verbose { Terminal.stderrLine("strategy: \(dataset.choice.reason(.commandLine))") }
            let positions = try chosenPositions(dataset)
            let started = clock.now
            let result = try Checksummer.run(dataset, positions: positions, threads: threads)
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
                o.add("open_s", Format.fixed(openSeconds, 4))
                o.add("run_s", Format.fixed(runSeconds, 4))
                o.add("samples_per_s", Format.fixed(Double(samples) / runSeconds, 1))
                o.add("mb_per_s", Format.fixed(Double(result.bytes) / runSeconds / 1e6, 1))
                o.add("bytes", int: result.bytes)
                o.add("peak_rss_mb", Format.fixed(rss, 1))
                o.add("touch", string: "crc32")
                o.add("checksum", int: Int64(result.crc))
                o.add("header_check", bool: dataset.verifiesHeaders)
                Terminal.line(o.text)
            } else {
                Terminal.line("strategy   \(dataset.strategy.rawValue) (\(dataset.choice.reason(.commandLine)))")
                Terminal.line("lookup     \(describe(dataset.lookup))")
                Terminal.line("opened in  \(Format.fixed(openSeconds, 3)) s")
                Terminal.line(
                    "read       \(Format.count(samples, "sample")) (\(Format.bytes(result.bytes))) in \(Format.fixed(runSeconds, 3)) s with \(Format.count(threads, "thread"))"
                )
                Terminal.line(
                    "rate       \(Format.count(Int((Double(samples) / runSeconds).rounded()))) samples/s, \(Format.fixed(Double(result.bytes) / runSeconds / 1e6, 1)) MB/s"
                )
                Terminal.line("peak RSS   \(Format.fixed(rss, 1)) MiB")
                Terminal.line("checksum   \(result.crc) (crc32)")
                if !dataset.verifiesHeaders { Terminal.line("headers    not checked (--no-header-check)") }
            }
            try Terminal.flush()
        }
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

/// Reads samples and chains zlib's crc32 over their members' bytes.
enum Checksummer {
    struct Result {
        var crc: UInt32
        var bytes: Int64
    }

    /// Reads `positions` (every sample in storage order when nil) with `threads` threads. Each
    /// thread checksums a contiguous part; the parts are joined with `crc32_combine`, so the
    /// result equals one thread's.
    static func run(_ dataset: Dataset, positions: [Int]?, threads: Int) throws -> Result {
        if threads == 1 {
            var result = Result(crc: 0, bytes: 0)
            if let positions {
                for p in positions { try dataset.withSample(at: p) { add($0, to: &result) } }
            } else {
                try dataset.forEachSample { add($0, to: &result) }
            }
            return result
        }
        let order = positions ?? dataset.storageOrder()
        let parts = (0..<threads).map { t in (order.count * t / threads)..<(order.count * (t + 1) / threads) }
        let results = Mutex([Result?](repeating: nil, count: threads))
        let failure = Mutex<(any Error)?>(nil)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var part = Result(crc: 0, bytes: 0)
            do {
                for i in parts[t] { try dataset.withSample(at: order[i]) { add($0, to: &part) } }
                results.withLock { $0[t] = part }
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return results.withLock { parts in
            parts.reduce(Result(crc: 0, bytes: 0)) { acc, part in
                let p = part!
                return Result(crc: Zlib.crc32Combine(acc.crc, p.crc, length2: p.bytes), bytes: acc.bytes + p.bytes)
            }
        }
    }

    @inline(__always)
    static func add(_ view: SampleView, to result: inout Result) {
        for member in view {
            result.bytes += Int64(member.bytes.count)
            result.crc = Zlib.crc32(result.crc, member.bytes)
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

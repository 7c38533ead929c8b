import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardRemote
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A map-style dataset over an index: `count`, samples by position (in the whole dataset or in
/// one split) and by key, and iteration that walks each shard front to back. Safe to share
/// between threads: every method may be called concurrently.
///
/// No SQL on the hot path (``lookup`` says which way is used, ``LookupMode`` chooses):
/// - `memory` and `mmap` resolve the selection's member locations once, at open, into a compact
///   table in memory (about 16 bytes a member plus the keys): a lookup is a few array reads;
/// - `pread`, and `mmap` when that table would not fit in half of the available memory, read
///   each sample's slot of the ``LocationFile`` beside the index (one `pread`), so memory stays
///   flat however large the dataset is;
/// - without a usable location file (a read-only folder), cached prepared statements.
///
/// Member bytes come from the ``strategy``:
/// - `memory`: the selection's bytes are read into RAM at open;
/// - `mmap`: shards are mapped read-only, and views point into the mappings;
/// - `pread`: each sample is read into a buffer of its own (one `pread` for adjacent members);
///   ``forEachSample(_:)`` reads ahead 1 MiB at a time instead, unless the selection uses too
///   little of what it reads (small members among large ones).
/// `auto` (the default) picks one from the selection's size and the memory this process may use;
/// see ``StrategyChoice/choose(requested:selectionBytes:tableBytes:memory:)`` and ``choice``.
///
/// ```swift
/// let train = try Dataset(index: "ds/index.sqlite", split: "train")
/// print(train.choice.reason)               // "memory: the selection needs 240 MB and ..."
/// let jpeg = try train[0]["jpg"]!          // an owned copy
/// let size = try train.withSample(at: 1) { $0["jpg"]?.count }   // a view, no copy
/// try train.forEachSample { view in consume(view) }             // shard by shard, front to back
/// ```
///
/// **Changed shards.** Every shard the selection uses is checked at open against the size and
/// modification time recorded at ingest; a shard that changed or vanished is refused with a
/// ``ShardChangedError`` naming it. Every read also checks each member's own tar header (the
/// 512-byte block before its data: checksum, type, size, name) against the index, read with the
/// member (`pread` reads from 512 bytes earlier, `mmap` finds it in the mapping, `memory` checks
/// it once during the preload), so a shard swapped for another of the same size and time, or a
/// damaged index row, is refused with a ``MemberHeaderError`` instead of giving wrong bytes; index
/// rows are validated when loaded (``IndexRowError``). Shards must not be modified while a dataset reads them: with
/// `pread`, a shard truncated later gives a ``ShardChangedError`` naming the shard and offset; with `mmap`,
/// reading a mapped page past the new end of a truncated file raises `SIGBUS`, which ends the
/// process (it cannot be caught safely); with `memory`, the bytes were copied at open and are
/// not affected. Use `pread` when shards may change under a running job.
public final class Dataset: Sendable {
    /// How positions are resolved to member locations.
    public enum Lookup: Sendable, Equatable {
        /// The in-memory location table, of `bytes` bytes.
        case table(bytes: Int64)
        /// The location file beside the index (``LocationFile``), read with one `pread` a sample
        /// (two for a record in its overflow area), each slot checked: no table in memory.
        case file(path: String)
        /// Cached prepared statements on the index.
        case statements
    }

    /// How to resolve positions.
    public enum LookupMode: Sendable, Equatable {
        /// The in-memory table when its estimated size fits in half of the available memory (or
        /// the available memory is unknown) and the strategy is not `pread`; otherwise the location
        /// file; statements when there is no usable location file (an index folder that cannot be
        /// written, an index from before location files). The `memory` strategy always builds the table.
        case auto
        /// Always build the in-memory table.
        case table
        /// Always use the location file (writing it when it is missing or out of date); opening
        /// fails when it cannot be used. Not with the `memory` strategy, which needs the table.
        case file
        /// Resolve every lookup with SQL. Not with the `memory` strategy, which needs the table.
        case statements
    }

    /// Settings beyond the split, extensions and strategy.
    public struct Options: Sendable {
        /// The memory figures to decide with; nil reads them from the system
        /// (``MemoryProbe/read(root:environment:)``, which honours `SHARDSTORE_MEMORY_LIMIT`).
        public var memory: MemoryFigures?
        /// How to resolve positions.
        public var lookup: LookupMode
        /// The most shards open (descriptors or mappings) at once; nil uses
        /// ``ShardFileCache/defaultCapacity()``.
        public var maxOpenShards: Int?
        /// Whether every read checks each member's own tar header against the index (see
        /// ``MemberHeaderError``). On by default; turn it off only to measure what the check
        /// costs (`shardstore bench --no-header-check`): without it, a shard swapped for another
        /// of the same size and modification time is read without notice.
        public var verifiesHeaders: Bool
        /// A folder for whole copies of shards; it must exist. Remote shards (S3, HTTP(S)) are
        /// downloaded into it on their first read (one GET each, checked against the ETag recorded
        /// at ingest) and read from there, so later epochs and processes send no request; compressed
        /// shards that cannot be entered in the middle (one zstd frame, one xz block, bzip2) are
        /// decompressed into it when they do not fit in RAM. Nil reads `SHARDSTORE_CACHE_DIR`
        /// (none: remote shards are read by range requests, and such compressed shards must fit
        /// in RAM).
        ///
        /// ```swift
        /// let options = Dataset.Options(cacheDirectory: "/scratch/cache", cacheLimit: 200 << 30)
        /// ```
        public var cacheDirectory: String?
        /// The most bytes of copies kept in ``cacheDirectory`` (least recently used ones are
        /// deleted first; a remote shard larger than this is read by range requests instead);
        /// nil reads `SHARDSTORE_CACHE_LIMIT`, else 16 GiB.
        public var cacheLimit: Int64?
        /// How the dataset will be read, for `auto` to choose by (``AccessPattern/random`` by
        /// default).
        public var access: AccessPattern
        /// How remote shards are reached (endpoint, credentials, retries); nil resolves it from
        /// the environment and the AWS files when a used shard is remote
        /// (`RemoteConfiguration.resolve()`).
        public var remote: RemoteConfiguration?

        public init(
            memory: MemoryFigures? = nil, lookup: LookupMode = .auto, maxOpenShards: Int? = nil,
            verifiesHeaders: Bool = true, cacheDirectory: String? = nil, cacheLimit: Int64? = nil,
            access: AccessPattern = .random, remote: RemoteConfiguration? = nil
        ) {
            self.memory = memory
            self.lookup = lookup
            self.maxOpenShards = maxOpenShards
            self.verifiesHeaders = verifiesHeaders
            self.cacheDirectory = cacheDirectory
            self.cacheLimit = cacheLimit
            self.access = access
            self.remote = remote
        }
    }

    /// How a dataset will be read, which decides what `auto` picks.
    ///
    /// ```swift
    /// let pass = try Dataset(index: "ds/index.sqlite", options: .init(access: .sequential))
    /// try pass.forEachSample { view in ... }
    /// ```
    public enum AccessPattern: Sendable {
        /// Samples by position, in any order, many times (training): `auto` preloads the
        /// selection when it fits in half the memory available.
        case random
        /// One front-to-back pass (``Dataset/forEachSample(_:)``): a preload would read every byte
        /// once before the pass reads it again, so `auto` maps the shards instead (`pread` when
        /// every shard is compressed), and compressed shards are decompressed as the pass goes,
        /// never whole into memory. Reads by position still work, more slowly.
        case sequential
    }

    /// The index file's path as given.
    public let path: String
    /// The split this dataset is limited to, if any.
    public let split: String?
    /// The extensions read (lowercase, without the dot), or nil for all.
    public let extensions: [String]?
    /// The number of samples (in the split when one is set).
    public let count: Int
    /// The strategy in use and why, in one sentence with the figures.
    public let choice: StrategyChoice
    /// How positions are resolved.
    public let lookup: Lookup
    /// The memory figures the choice was made with.
    public let memory: MemoryFigures
    /// The total bytes of the selected members.
    public let selectionBytes: Int64
    /// The index's shards, in ingest order.
    public let shards: [ShardRecord]

    /// The strategy in use (never `auto`).
    public var strategy: LoadingStrategy { choice.strategy }
    /// Whether reads check each member's own tar header (``Options/verifiesHeaders``).
    public let verifiesHeaders: Bool

    private let table: LocationTable?
    private let locations: LocationFile?
    /// With the location file in a split: the global index of each position.
    private let splitIndexes: [UInt32]?
    /// With the location file: whether each of its extension numbers is read.
    private let selectedExtensions: [Bool]
    private let source: any ByteSource
    private let pool: ConnectionPool
    private let splitID: Int64?
    private let shardNumbers: [Int64: Int]
    private let keyIndex = Mutex<KeyIndex?>(nil)

    /// Opens the index at `path`, optionally limited to split `split` and to the members with the
    /// given extensions, reading with `strategy`.
    ///
    /// ```swift
    /// let ds = try Dataset(index: "ds/index.sqlite", extensions: ["jpg", "cls"], strategy: .mmap)
    /// ```
    ///
    /// - Parameters:
    ///   - extensions: the extensions to read (`"jpg"`, `".JPG"` and `"seg.png"` are accepted);
    ///     samples keep their positions even when they have none of them. Nil reads every member.
    /// - Throws: `IndexError` (no such index or split), ``DatasetError`` (no such extension; the
    ///   `memory` strategy with another lookup, or larger than the memory available), `SchemaError`,
    ///   ``ShardChangedError`` (a shard changed or vanished since ingest), `IOError`,
    ///   `MemorySizeError` (a bad `SHARDSTORE_MEMORY_LIMIT`), `SQLiteError`.
    /// - Complexity: O(samples + members) to build the table; with `memory`, reading the
    ///   selection's bytes.
    public init(
        index path: String, split: String? = nil, extensions: [String]? = nil, strategy: LoadingStrategy = .auto,
        options: Options = Options()
    ) throws {
        let prepared = try Self.prepare(path, split, extensions, strategy, options)
        let plan = prepared.plan
        self.path = path
        self.split = split
        self.extensions = plan.extensions
        count = plan.count
        verifiesHeaders = options.verifiesHeaders
        choice = plan.choice
        lookup = plan.lookup
        memory = plan.memory
        selectionBytes = plan.selectionBytes
        table = prepared.table
        locations = prepared.locations
        splitIndexes = prepared.splitIndexes
        selectedExtensions =
            prepared.locations?.extensionNames.map { name in plan.extensions.map { $0.contains(name) } ?? true } ?? []
        splitID = prepared.splitID
        let shards = prepared.shards
        self.shards = shards
        shardNumbers = prepared.shardNumbers
        let used = prepared.used

        // The byte source; every used shard is checked against the index here.
        let indexDirectory = try Paths.real(Paths.directory(of: Paths.absolute(path)))
        let paths = shards.map { Paths.resolveStoredShardPath($0.path, indexDirectory: indexDirectory) }
        let capacity = options.maxOpenShards ?? ShardFileCache<MappedFile>.defaultCapacity()
        let policy = HeaderPolicy(verifies: options.verifiesHeaders, indexPath: path)
        let compressed = try CompressedShards.make(
            records: shards, paths: paths, used: used, tables: prepared.seekTables, indexPath: path,
            cacheCapacity: prepared.cacheCapacity, cacheFolder: prepared.cacheFolder, streamOnly: prepared.streamOnly,
            spanCapacity: DecodedSpans.capacity(available: prepared.plan.memory.available))
        // Remote shards are read by range requests, or from whole copies in a cache folder; only
        // local ones are opened as files.
        let remote = try RemoteShards.make(
            records: shards, used: used, configuration: options.remote, indexPath: path,
            folder: prepared.remoteFolder)
        let local = used.indices.map { used[$0] && !(remote?.isRemote($0) ?? false) }
        switch plan.choice.strategy {
        case .memory:
            let files = try ShardFiles<ReadOnlyFile>(
                records: shards, paths: paths, used: used, capacity: capacity, indexPath: path)
            source = PreloadedSource(
                arenas: try Preload.load(
                    prepared.table!, from: files, compressed: compressed, verifiesHeaders: options.verifiesHeaders))
        case .mmap:
            // A compressed shard cannot be mapped: its samples are read through its decompressor;
            // a remote one by range requests.
            let plain = used.indices.map { local[$0] && !shards[$0].isCompressed }
            let mapped = MappedSource(
                files: try ShardFiles<MappedFile>(
                    records: shards, paths: paths, used: plain, capacity: capacity, indexPath: path),
                policy: policy)
            if compressed != nil || remote != nil {
                let packed = used.indices.map { local[$0] && shards[$0].isCompressed }
                source = SplitSource(
                    mapped: mapped,
                    file: FileSource(
                        files: try ShardFiles<ReadOnlyFile>(
                            records: shards, paths: paths, used: packed, capacity: capacity, indexPath: path),
                        policy: policy, compressed: compressed, remote: remote))
            } else {
                source = mapped
            }
        case .pread, .remote, .auto:
            source = FileSource(
                files: try ShardFiles<ReadOnlyFile>(
                    records: shards, paths: paths, used: local, capacity: capacity, indexPath: path),
                policy: policy, compressed: compressed, remote: remote)
        }
        pool = ConnectionPool(path: path, first: prepared.reader)
        openedInProcess = getpid()
    }

    /// The process that opened this dataset (``reopenedAfterFork()`` sets the child's).
    public let openedInProcess: pid_t

    /// This dataset for the current process after `fork()`: it shares what a fork copies or
    /// inherits safely (the location table, the preload, mappings and descriptors of open
    /// shards, the location file) and makes anew what must not cross a fork: SQLite connections
    /// (opened again, in this process, on first use) and locks (a lock a parent's thread held at
    /// the fork would never be released). Nothing of the parent's is closed or released here:
    /// closing an inherited SQLite connection in the child could harm the parent's.
    ///
    /// Call it in the child before its first read, once; the C ABI does so when it sees a new
    /// process id (see ``openedInProcess``).
    ///
    /// ```swift
    /// if getpid() != dataset.openedInProcess { dataset = dataset.reopenedAfterFork() }
    /// ```
    ///
    /// - Complexity: O(shards).
    public func reopenedAfterFork() -> Dataset { Dataset(forkOf: self) }

    private init(forkOf parent: Dataset) {
        path = parent.path
        split = parent.split
        extensions = parent.extensions
        count = parent.count
        choice = parent.choice
        lookup = parent.lookup
        memory = parent.memory
        selectionBytes = parent.selectionBytes
        shards = parent.shards
        verifiesHeaders = parent.verifiesHeaders
        table = parent.table
        locations = parent.locations
        splitIndexes = parent.splitIndexes
        selectedExtensions = parent.selectedExtensions
        source = parent.source.forChildProcess()
        pool = ConnectionPool(path: parent.path, location: parent.pool.location, first: nil)
        splitID = parent.splitID
        shardNumbers = parent.shardNumbers
        openedInProcess = getpid()
    }

    /// What opening a dataset would do, decided without reading any member bytes.
    public struct Plan: Sendable {
        /// The number of samples selected.
        public var count: Int
        /// The extensions read (normalized), or nil for all.
        public var extensions: [String]?
        /// The strategy and why.
        public var choice: StrategyChoice
        /// How positions would be resolved.
        public var lookup: Lookup
        /// The total bytes of the selected members.
        public var selectionBytes: Int64
        /// The memory figures used.
        public var memory: MemoryFigures
    }

    /// Decides, as ``init(index:split:extensions:strategy:options:)`` would, how a dataset would
    /// be read (strategy, reason, lookup), without preloading or opening shards.
    ///
    /// ```swift
    /// let plan = try Dataset.plan(index: "ds/index.sqlite", split: "train")
    /// print(plan.choice.reason)
    /// ```
    ///
    /// - Throws: as the initializer, except for shard errors.
    /// - Complexity: as building the location table: O(samples + members).
    public static func plan(
        index path: String, split: String? = nil, extensions: [String]? = nil, strategy: LoadingStrategy = .auto,
        options: Options = Options()
    ) throws -> Plan {
        try prepare(path, split, extensions, strategy, options).plan
    }

    /// Everything decided before the byte source is opened.
    private struct Prepared {
        var plan: Plan
        var reader: IndexReader
        var table: LocationTable?
        var locations: LocationFile?
        var splitIndexes: [UInt32]?
        var splitID: Int64?
        var shards: [ShardRecord]
        var shardNumbers: [Int64: Int]
        /// Which shards the selection reads (all of them without a table).
        var used: [Bool]
        /// The stored seek tables of the used compressed shards, by shard id.
        var seekTables: [Int64: StoredSeekTable]
        /// The bytes of whole decompressed shards kept for reads (shards that cannot be entered
        /// in the middle).
        var cacheCapacity: Int64
        /// Where such copies go instead of RAM, when they do not fit there.
        var cacheFolder: ShardCacheFolder?
        /// Whether such shards are only ever decompressed forward (a sequential dataset whose
        /// shards fit neither in RAM nor in a cache folder).
        var streamOnly: Bool
        /// The cache folder remote shards are copied into, when one is named and a used shard is
        /// remote.
        var remoteFolder: ShardCacheFolder?
    }

    private static func prepare(
        _ path: String, _ split: String?, _ extensions: [String]?, _ strategy: LoadingStrategy, _ options: Options
    ) throws -> Prepared {
        let reader = try IndexReader(path: path)
        // The table is built from sequential scans, which need no large page cache: 256 KiB
        // instead of SQLite's 2 MiB keeps the peak memory of a pread dataset low.
        try reader.useSmallPageCache()
        let wanted = try extensions.map { Array(Set(try $0.map { try Self.normalize($0, in: reader) })).sorted() }
        let splitID = try split.map { try reader.splitID($0) }
        let count = try split.map { try reader.sampleCount(inSplit: $0) } ?? reader.sampleCount()
        let shards = try reader.shards()
        var numbers: [Int64: Int] = [:]
        for (n, s) in shards.enumerated() { numbers[s.id] = n }
        let memory = try options.memory ?? MemoryProbe.read()

        // The table, unless it would not fit.
        let totalSamples = try reader.sampleCount()
        // In floating point, clamped: member counts come from disk and must not trap when damaged.
        let totalMembers = shards.reduce(0.0) { $0 + Double(max($1.memberCount, 0)) }
        let expectedMembers =
            totalSamples == 0 ? 0 : Int(min(totalMembers * Double(count) / Double(totalSamples), Double(Int32.max)))
        let estimate = LocationTable.estimatedBytes(samples: count, members: expectedMembers, isSplit: split != nil)
        let mode = options.lookup
        if strategy == .memory, mode == .file || mode == .statements {
            let lookups = OptionSetting(.lookup, ["auto", "table"])
            throw DatasetError(
                .invalidArgument,
                "the memory strategy needs the in-memory location table; use \(lookups.text(.api)), or another strategy",
                mentioning: [lookups])
        }
        // A sequential pass resolves each position once, in order: the location file serves it
        // without building a table first.
        let passSkipsTable = options.access == .sequential && mode == .auto && strategy != .memory
        let buildTable: Bool
        switch mode {
        case .table: buildTable = true
        case .file, .statements: buildTable = false
        case .auto:
            buildTable =
                !passSkipsTable
                && (strategy == .memory
                    || (strategy != .pread && memory.available.map { estimate <= $0 / 2 } ?? true))
        }
        var table: LocationTable?
        var overflow: String?
        var used = [Bool](repeating: true, count: shards.count)
        if buildTable {
            do {
                let built = try LocationTable.build(
                    reader: reader, splitID: splitID, count: count, extensions: wanted.map(Set.init),
                    // A reservation only: bounded so that a damaged member count cannot make it huge.
                    shards: shards, shardNumbers: numbers,
                    expectedMembers: wanted == nil ? min(expectedMembers, count * 16) : 0,
                    indexPath: path)
                try Self.checkExtensions(wanted, found: built.allExtensionNames)
                used = [Bool](repeating: false, count: shards.count)
                for m in built.members { used[Int(m.shard)] = true }
                table = built
            } catch let tooBig as LocationTable.Overflow {
                guard strategy != .memory else {
                    let others = OptionSetting(.strategy, ["mmap", "pread"])
                    throw DatasetError(
                        .invalidArgument,
                        "the memory strategy cannot be used here: \(tooBig.reason) do not fit the location table; use \(others.text(.api))",
                        mentioning: [others])
                }
                table = nil
                overflow = "\(tooBig.reason) do not fit it"
            }
        }
        // Without a table: the location file, unless statements were asked for.
        var locations: LocationFile?
        var splitIndexes: [UInt32]?
        if table == nil, mode == .auto || mode == .file {
            do {
                locations = try LocationFile.openOrWrite(indexPath: path, reader: reader, shards: shards)
            } catch {
                if mode == .file {
                    throw IndexError.invalidArgument("the location file cannot be used: \(error.reason)")
                }
            }
            if let locations {
                try Self.checkExtensions(wanted, found: locations.extensionNames)
                if let splitID { splitIndexes = try reader.splitSampleIDs(splitID: splitID, count: count) }
            }
        }
        let selectionBytes: Int64
        if let table {
            selectionBytes = table.selectionBytes
        } else if let locations, splitID == nil {
            selectionBytes = zip(locations.extensionNames, locations.extensionBytes).reduce(0) { sum, ext in
                wanted.map { $0.contains(ext.0) } ?? true ? sum + ext.1 : sum
            }
        } else {
            selectionBytes = try reader.selectionBytes(splitID: splitID, extensions: wanted)
            if let wanted, locations == nil { try Self.checkExtensions(wanted, reader: reader) }
        }
        let lookupWithoutTable: OptionSetting? =
            switch (table, mode) {
            case (nil, .file): OptionSetting(.lookup, ["file"])
            case (nil, .statements): OptionSetting(.lookup, ["statements"])
            default: nil
            }
        let withoutTable: String? =
            if let lookupWithoutTable {
                "\(lookupWithoutTable.text(.api)) keeps no location table"
            } else if table == nil, let overflow {
                "the location table cannot hold this selection: \(overflow)"
            } else {
                nil
            }
        // A preload asked for by name must fit what is available: an allocation past it would be
        // killed by the kernel (or abort), not refused.
        if strategy == .memory, let available = memory.available, selectionBytes > available {
            let others = OptionSetting(.strategy, ["mmap", "pread"])
            let auto = OptionSetting(.strategy, ["auto"])
            throw DatasetError(
                .outOfMemory,
                "the memory strategy would read \(selectionBytes) bytes into RAM, more than the \(available) bytes available; use \(others.text(.api)), or \(auto.text(.api)) to choose",
                mentioning: [others, auto])
        }
        var choice = StrategyChoice.choose(
            requested: strategy, selectionBytes: selectionBytes, tableBytes: table?.byteCount ?? estimate,
            memory: memory, tableFits: table != nil || passSkipsTable, withoutTable: withoutTable,
            mentioning: lookupWithoutTable.map { [$0] } ?? [])
        if options.access == .sequential, strategy == .auto, choice.strategy != .pread {
            choice = StrategyChoice(
                strategy: .mmap,
                reason:
                    "mmap: a sequential pass reads each byte once and keeps nothing, so nothing is preloaded"
            )
        }
        // Compressed shards: read through their seek points, or decompressed whole into a cache.
        let compressedIDs = shards.indices.filter { used[$0] && shards[$0].isCompressed }.map { shards[$0].id }
        let seekTables = try reader.seekTables(forShards: compressedIDs)
        var cacheCapacity: Int64 = 0
        var cacheFolder: ShardCacheFolder?
        var streamOnly = false
        // Remote first, so that the notes on compressed shards (remote ones too) follow its reason.
        // A folder named in the options must exist, even when this selection has no use for it.
        if let directory = options.cacheDirectory { _ = try ShardCacheFolder(path: directory, limit: 0) }
        let remoteUsed = shards.indices.contains { used[$0] && RemoteLocation.hasRemoteScheme(shards[$0].path) }
        let remoteFolder =
            remoteUsed ? try ShardCacheFolder.named(options.cacheDirectory, limit: options.cacheLimit) : nil
        choice = try Self.accountForRemote(
            choice, requested: strategy, shards: shards, used: used, folder: remoteFolder)
        if !compressedIDs.isEmpty {
            (choice, cacheCapacity, cacheFolder, streamOnly) = try Self.accountForCompression(
                choice, requested: strategy, shards: shards, used: used, seekTables: seekTables, memory: memory,
                options: options)
        }
        let lookup: Lookup =
            if let table { .table(bytes: table.byteCount) } else if let locations { .file(path: locations.path) } else {
                .statements
            }
        let plan = Plan(
            count: count, extensions: wanted, choice: choice, lookup: lookup, selectionBytes: selectionBytes,
            memory: memory)
        return Prepared(
            plan: plan, reader: reader, table: table, locations: locations, splitIndexes: splitIndexes,
            splitID: splitID, shards: shards, shardNumbers: numbers, used: used, seekTables: seekTables,
            cacheCapacity: cacheCapacity, cacheFolder: cacheFolder, streamOnly: streamOnly, remoteFolder: remoteFolder)
    }

    /// The choice adjusted for the selection's compressed shards, the RAM for whole decompressed
    /// shards, and the cache folder used instead: `mmap` does not apply to a compressed shard
    /// (when every used shard is compressed, `auto` takes `pread`); a shard that cannot be entered
    /// in the middle (one zstd frame, one xz block, bzip2) is decompressed whole, into a RAM cache
    /// of at least its size when it fits in half the memory available, else into the cache
    /// folder (``Options/cacheDirectory``, `SHARDSTORE_CACHE_DIR`). With `memory`, the preload
    /// decompresses every shard once instead. For a ``AccessPattern/sequential`` dataset, the
    /// pass decompresses each shard forward, and a shard that fits neither in RAM nor in a cache
    /// folder is read only that way (`streamOnly`). The reason says how the compressed shards are
    /// read.
    ///
    /// - Throws: ``DatasetError`` (`.outOfMemory`) when such a shard does not fit in RAM and no
    ///   cache folder is named (unless the access is sequential), or (`.invalidArgument`) when the
    ///   folder does not exist.
    private static func accountForCompression(
        _ choice: StrategyChoice, requested: LoadingStrategy, shards: [ShardRecord], used: [Bool],
        seekTables: [Int64: StoredSeekTable], memory: MemoryFigures, options: Options
    ) throws -> (StrategyChoice, Int64, ShardCacheFolder?, streamOnly: Bool) {
        var choice = choice
        var seekable = 0
        var whole: [ShardRecord] = []
        var plain = 0
        for (n, s) in shards.enumerated() where used[n] {
            if !s.isCompressed {
                plain += 1
            } else if (seekTables[s.id]?.pointCount ?? 0) > 0 {
                seekable += 1
            } else {
                whole.append(s)
            }
        }
        if choice.strategy == .mmap, plain == 0, requested == .auto {
            choice.strategy = .pread
            choice.reason =
                "pread" + choice.reason.dropFirst("mmap".count) + " (every shard is compressed: none can be mapped)"
        }
        var notes: [String] = []
        let sequential = options.access == .sequential && choice.strategy != .memory
        if choice.strategy == .memory {
            notes.append("compressed shards are decompressed once, into the preload")
        } else if sequential {
            notes.append(
                "a pass decompresses each compressed shard front to back, a few MiB ahead of the reads on a thread of its own"
            )
        } else if seekable > 0 {
            notes.append(
                "\(seekable) compressed shard\(seekable == 1 ? " is" : "s are") read from \(seekable == 1 ? "its" : "their") seek points, the seek spans decoded last kept in up to \(formatBytes(Int64(DecodedSpans.capacity(available: memory.available)))) for reads that come back to them"
            )
        }
        var capacity: Int64 = 0
        var folder: ShardCacheFolder?
        var streamOnly = false
        if choice.strategy != .memory, let largest = whole.map({ $0.uncompressedSize ?? 0 }).max() {
            let some =
                "\(whole.count) compressed shard\(whole.count == 1 ? "" : "s") that cannot be entered in the middle (one zstd frame or xz block, or bzip2) \(whole.count == 1 ? "is" : "are") decompressed whole"
            let available = memory.available ?? Int64.max
            if largest <= available / 2 {
                // Room for the largest shard, and for a few while threads read several: a quarter
                // of what is available, at most.
                capacity = max(largest, min(available / 4, largest * 4))
                if !sequential { notes.append("\(some) into a RAM cache of \(formatBytes(capacity))") }
            } else if let named = try ShardCacheFolder.named(options.cacheDirectory, limit: options.cacheLimit) {
                folder = named
                if !sequential {
                    notes.append(
                        "\(some) into the cache folder '\(MessageText.escaped(named.path))' (up to \(formatBytes(named.limit)), least recently used copies deleted first), as the largest needs \(formatBytes(largest)), more than half of the \(formatBytes(available)) available"
                    )
                }
            } else if sequential {
                streamOnly = true
            } else {
                let name = whole.max { ($0.uncompressedSize ?? 0) < ($1.uncompressedSize ?? 0) }!.path
                throw DatasetError(
                    .outOfMemory,
                    "shard '\(MessageText.escaped(name))' cannot be read in the middle (one \(whole[0].compression) frame or block) and decompresses to \(largest) bytes, more than half of the \(available) bytes available; set SHARDSTORE_CACHE_DIR to a folder with room for it (copies are kept there), or compress the shard in independent pieces (`pzstd`, `xz --block-size=4MiB`, or gzip) and ingest that"
                )
            }
        }
        if !notes.isEmpty { choice.reason += "; " + notes.joined(separator: "; ") }
        return (choice, capacity, folder, streamOnly)
    }

    /// The choice adjusted for the selection's remote shards: `auto` picks `remote` (one range
    /// request a sample, or whole copies in the cache `folder`; never a preload over the network);
    /// `mmap` and `pread` asked for by name apply to the local shards, and the reason says how the
    /// remote ones are read; `memory` is refused.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for `memory` with a remote shard.
    private static func accountForRemote(
        _ choice: StrategyChoice, requested: LoadingStrategy, shards: [ShardRecord], used: [Bool],
        folder: ShardCacheFolder?
    ) throws -> StrategyChoice {
        let remoteShards = shards.indices.filter { used[$0] && RemoteLocation.hasRemoteScheme(shards[$0].path) }
        let remote = remoteShards.count
        let local = used.filter { $0 }.count - remote
        guard remote > 0 else { return choice }
        let shardsText = "\(remote) shard\(remote == 1 ? " is" : "s are") remote"
        let how = Self.remoteReadText(shards: remoteShards.map { shards[$0] }, folder: folder)
        switch requested {
        case .memory:
            let others = OptionSetting(.strategy, ["remote", "auto"])
            throw DatasetError(
                .invalidArgument,
                "the memory strategy cannot preload remote shards (\(shardsText)); use \(others.text(.api))",
                mentioning: [others])
        case .auto:
            var reason = "remote: \(shardsText) (object storage or a web server)\(how)"
            if local > 0 { reason += "; the \(local) local shard\(local == 1 ? " is" : "s are") read with pread" }
            return StrategyChoice(strategy: .remote, reason: reason)
        case .remote:
            guard folder != nil else { return choice }
            var adjusted = choice
            adjusted.reason += "; \(shardsText)\(how)"
            return adjusted
        case .mmap, .pread:
            var adjusted = choice
            adjusted.reason += "; \(shardsText)\(how)"
            return adjusted
        }
    }

    /// How remote `shards` are read, for a reason (it starts with `": "` or `", "`): by range
    /// requests, or, with `folder`, from whole copies there, except those larger than its limit.
    private static func remoteReadText(shards: [ShardRecord], folder: ShardCacheFolder?) -> String {
        guard let folder else { return ": " + rangesText(shards) }
        let place = "the cache folder '\(MessageText.escaped(folder.path))'"
        let larger = shards.filter { $0.size > folder.limit }
        let copied = shards.count - larger.count
        guard copied > 0 else {
            return
                ": \(larger.count == 1 ? "it is" : "all are") larger than the \(formatBytes(folder.limit)) limit of \(place), so \(rangesText(shards))"
        }
        var text =
            ", cached whole in \(place) (limit \(formatBytes(folder.limit)), least recently used copies deleted first): each is downloaded once, with one GET sent with the ETag recorded at ingest (If-Match), then read from there with pread"
        if !larger.isEmpty {
            text +=
                "; \(larger.count) shard\(larger.count == 1 ? " is" : "s are") larger than that limit: \(rangesText(larger))"
        }
        return text
    }

    /// How remote shards read by range requests are read: one request a sample over its members,
    /// or, for compressed ones, requests of ``RemoteShards/compressedChunk`` bytes or more from
    /// their seek points, frames or blocks.
    private static func rangesText(_ shards: [ShardRecord]) -> String {
        let ranges =
            "each sample is one range request over its members, sent with the ETag recorded at ingest (If-Match)"
        let compressed = shards.filter(\.isCompressed).count
        let chunks =
            "read in range requests of \(RemoteShards.compressedChunk >> 20) MiB or more from where decompression can start"
        if compressed == 0 { return ranges }
        if compressed == shards.count {
            return
                "every request is a range request sent with the ETag recorded at ingest (If-Match); \(compressed == 1 ? "it is" : "they are") compressed, and \(chunks)"
        }
        return ranges + "; the \(compressed) compressed ones are \(chunks)"
    }

    /// `".JPG"` → `"jpg"`; `".png"` stays `".png"` when a member has that extension (`y..png`).
    static func normalize(_ ext: String, in reader: IndexReader) throws -> String {
        try WebDatasetName.requestedExtension(ext) { try reader.hasMember(withExtension: $0) }
    }

    // MARK: Reading

    /// The sample at `position` (a global index, or a split position when a split is set), with
    /// its own copy of the bytes.
    ///
    /// - Throws: see ``sample(at:)``.
    public subscript(position: Int) -> Sample {
        get throws { try sample(at: position) }
    }

    /// The sample at `position`, with its own copy of the bytes.
    ///
    /// ```swift
    /// let sample = try dataset.sample(at: 42)
    /// ```
    ///
    /// - Throws: ``IndexError/indexOutOfRange(index:count:split:)``, ``ShardChangedError`` (a
    ///   shard opened later than the dataset changed), `IOError`.
    /// - Complexity: O(members) plus reading (and copying) the bytes.
    public func sample(at position: Int) throws -> Sample {
        try withSample(at: position) { $0.copy() }
    }

    /// Calls `body` with a view of the sample at `position`, without copying its bytes.
    ///
    /// The view is valid only inside `body` (see ``SampleView``).
    ///
    /// ```swift
    /// let crc = try dataset.withSample(at: 42) { view in view.reduce(0) { $0 &+ $1.bytes.count } }
    /// ```
    ///
    /// - Throws: ``IndexError/indexOutOfRange(index:count:split:)``, ``ShardChangedError``,
    ///   `IOError`, or what `body` throws.
    /// - Complexity: O(members) array reads (no SQL with the table) plus, with `pread`, one read.
    @inlinable
    public func withSample<R>(at position: Int, _ body: (SampleView) throws -> R) throws -> R {
        var result: R?
        try visitSample(at: position) { view, _ in result = try body(view) }
        return result!
    }

    /// ``visitKeptSample(at:window:_:)`` without a window: what the generic entry points
    /// (``withSample(at:_:)``, ``withKeptSample(at:_:)``) call, inlined into their callers, so that
    /// a caller in another module reaches the read through compiled, not generic, code.
    @usableFromInline
    func visitSample(at position: Int, _ body: (SampleView, AnyObject?) throws -> Void) throws {
        try visitKeptSample(at: position, window: nil, body)
    }

    /// ``visitKeptSample(at:window:_:)`` without the keeper.
    private func withSample(at position: Int, window: ReadWindow?, _ body: (SampleView) throws -> Void) throws {
        try visitKeptSample(at: position, window: window) { view, _ in try body(view) }
    }

    /// Calls `body` with a view of the sample at `position` and the object that keeps the view's
    /// member bytes valid (nil: the dataset, or `window` until its next use); the key bytes are
    /// valid only inside `body`.
    ///
    /// Every read of a sample goes through here. It has no generic result: a generic read called
    /// from another module runs unspecialized, looking type metadata up at run time (the C
    /// library's `shardstore_get` took about a third longer so). The generic entry points
    /// (``withSample(at:_:)``, ``withKeptSample(at:_:)``) are inlinable wrappers that keep their
    /// result in a local.
    ///
    /// ```swift
    /// var length = 0
    /// try dataset.visitKeptSample(at: 3, window: nil) { view, _ in length = view[0].bytes.count }
    /// ```
    ///
    /// - Throws: as ``withSample(at:_:)``, or what `body` throws.
    /// - Complexity: as ``withSample(at:_:)``.
    package func visitKeptSample(
        at position: Int, window: ReadWindow?, _ body: (SampleView, AnyObject?) throws -> Void
    ) throws {
        guard position >= 0, position < count else {
            throw IndexError.indexOutOfRange(index: position, count: count, split: split)
        }
        if let table { return try withTableSample(table, position, window, body) }
        if let locations { return try withFileSample(locations, position, window, body) }
        return try withQueriedSample(position, window, body)
    }

    /// The position of the sample with key `key` in this dataset.
    ///
    /// ```swift
    /// let p = try dataset.position(forKey: SampleKey("000123"))
    /// ```
    ///
    /// - Throws: ``IndexError/unknownKey(_:)``, ``IndexError/keyNotInSplit(_:split:)``,
    ///   ``IndexError/ambiguousKey(_:indexes:)`` (duplicates kept at ingest).
    /// - Complexity: O(1) expected with the table (a hash table built on the first call, O(samples));
    ///   O(log samples) with statements.
    public func position(forKey key: SampleKey) throws -> Int {
        let found: [Int]
        if let table {
            let keys = keyIndex.withLock { index in
                if index == nil { index = KeyIndex(table) }
                return index!
            }
            found = keys.positions(of: key.bytes, in: table)
        } else {
            found = try pool.with { try $0.positions(ofKey: key, splitID: splitID) }
        }
        if found.count == 1 { return found[0] }
        if found.count > 1 {
            throw IndexError.ambiguousKey(key, indexes: try found.map { try globalIndex(at: $0) })
        }
        if let split, try pool.with({ try !$0.samples(forKey: key).isEmpty }) {
            throw IndexError.keyNotInSplit(key, split: split)
        }
        throw IndexError.unknownKey(key)
    }

    /// The sample with key `key`, with its own copy of the bytes.
    ///
    /// - Throws: see ``position(forKey:)`` and ``sample(at:)``.
    public func sample(forKey key: SampleKey) throws -> Sample {
        try sample(at: try position(forKey: key))
    }

    /// The key of the sample at `position`, without reading any bytes.
    ///
    /// - Throws: ``IndexError/indexOutOfRange(index:count:split:)``.
    /// - Complexity: O(key length) with the table; one indexed lookup with statements.
    public func key(at position: Int) throws -> SampleKey {
        guard position >= 0, position < count else {
            throw IndexError.indexOutOfRange(index: position, count: count, split: split)
        }
        if let table {
            return SampleKey(
                bytes: Array(table.keyBytes[Int(table.keyStarts[position])..<Int(table.keyStarts[position + 1])]))
        }
        if let locations {
            // A slot that fails its checks gives nil: the key comes from the index then.
            let index = splitIndexes.map { Int($0[position]) } ?? position
            if let key = try locations.withRecord(index, { SampleKey(bytes: Array($0.key)) }) { return key }
        }
        return try pool.with { reader in
            guard let key = try reader.key(atPosition: position, splitID: splitID) else {
                throw Self.noSample(at: position)
            }
            return key
        }
    }

    /// The dense global index of the sample at `position`.
    public func globalIndex(at position: Int) throws -> Int {
        guard position >= 0, position < count else {
            throw IndexError.indexOutOfRange(index: position, count: count, split: split)
        }
        if let table { return table.globalIndexes.map { Int($0[position]) } ?? position }
        if let splitIndexes { return Int(splitIndexes[position]) }
        guard let splitID else { return position }
        return try pool.with { Int(try $0.globalIndex(atPosition: position, splitID: splitID) ?? -1) }
    }

    /// Calls `body` with every sample, walking each shard front to back (shards in ingest order),
    /// which is the order that reads the disk sequentially. Without a split this is index order;
    /// in a split, ``SampleView/position`` gives each sample's split position (split positions
    /// follow the global order, so this is position order too, except for samples whose members
    /// were merged from several shards). With `mmap`, the kernel is told to read ahead. Throw from
    /// `body` to stop early.
    ///
    /// ```swift
    /// try dataset.forEachSample { view in
    ///     for member in view { hash(member.bytes) }
    /// }
    /// ```
    ///
    /// - Throws: what ``withSample(at:_:)`` or `body` throws.
    /// - Complexity: O(samples log samples) for the order in a split, then one read per sample.
    public func forEachSample(_ body: (SampleView) throws -> Void) throws {
        source.sequentialPass(true)
        defer { source.sequentialPass(false) }
        // Samples that follow each other in a shard come out of one large read (sources that copy).
        let window = ReadWindow()
        guard let table, splitID != nil else {
            for p in 0..<count { try withSample(at: p, window: window, body) }
            return
        }
        for p in table.storageOrder() { try withSample(at: Int(p), window: window, body) }
    }

    /// Calls `body` with a view of each sample at `positions`, in that order, as
    /// ``withSample(at:_:)`` does; with remote shards, the samples' range requests go out together,
    /// up to `requestsInFlight` at once from the calling thread (libcurl's multi interface, over
    /// kept-alive connections), a few times that many samples at a time. For other shards, and with
    /// `requestsInFlight` 1, each sample is read when its turn comes. Throw from `body` to stop.
    ///
    /// ```swift
    /// try dataset.withSamples(at: batch, requestsInFlight: 32) { view in
    ///     for member in view { hash(member.bytes) }
    /// }
    /// ```
    ///
    /// - Throws: what ``withSample(at:_:)`` or `body` throws (a failed request is sent again on its
    ///   own, with its retries, and its error is the one thrown).
    /// - Complexity: one range request per sample (remote shards), with `requestsInFlight` in
    ///   flight; memory for `4 × requestsInFlight` samples' bytes at most.
    public func withSamples(
        at positions: some Collection<Int>, requestsInFlight: Int, _ body: (SampleView) throws -> Void
    ) throws {
        guard requestsInFlight > 1, source.remoteShards != nil else {
            for p in positions { try withSample(at: p, window: nil, body) }
            return
        }
        let chunk = max(requestsInFlight * 4, 64)
        var rest = positions[...]
        while !rest.isEmpty {
            let part = rest.prefix(chunk)
            rest = rest.dropFirst(part.count)
            let window = fetchWindow(part, requestsInFlight: requestsInFlight)
            for p in part { try withSample(at: p, window: window, body) }
        }
    }

    /// How many range requests a batch of remote samples keeps in flight (the loader's, the C
    /// library's `get_batch`): the remote configuration's ``RemoteConfiguration/maxInFlight``; 1
    /// without remote shards.
    package var remoteRequestsInFlight: Int { source.remoteShards?.client.configuration.maxInFlight ?? 1 }

    /// A window holding the samples at `positions` of remote shards, fetched together with up to
    /// `requestsInFlight` range requests in flight; nil when there is nothing to fetch (no remote
    /// shard, or no location table to plan the reads from). Reads through it take their bytes from
    /// there, and a lease of one holds them.
    package func fetchWindow(_ positions: some Sequence<Int>, requestsInFlight: Int) -> ReadWindow? {
        guard let remote = source.remoteShards, let table else { return nil }
        let header = verifiesHeaders ? MemberHeaderCheck.blockSize : 0
        var spans: [(shard: Int, low: Int64, span: Int)] = []
        table.members.withUnsafeBufferPointer { all in
            for position in positions where position >= 0 && position < count {
                let start = Int(table.memberStarts[position])
                let end = Int(table.memberStarts[position + 1])
                let rows = UnsafeBufferPointer(rebasing: all[start..<end])
                withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rows.count, 1)) { lengths in
                    for i in 0..<rows.count { lengths[i] = Int(table.length(ofMember: start + i)) }
                    let sizes = UnsafeBufferPointer(rebasing: lengths[0..<rows.count])
                    if let read = FileSource.coalescedRead(rows, sizes, header: header) { spans.append(read) }
                }
            }
        }
        return remote.fetch(spans, inFlight: requestsInFlight).map { ReadWindow(fetched: $0) }
    }

    /// The positions in the order ``forEachSample(_:)`` visits them: shard by shard, front to
    /// back (`0..<count` without a split, or without the table).
    ///
    /// - Complexity: O(samples log samples) in a split; O(samples) otherwise.
    public func storageOrder() -> [Int] {
        guard let table, splitID != nil else { return Array(0..<count) }
        return table.storageOrder().map { Int($0) }
    }

    // MARK: Table path

    private func withTableSample(
        _ table: LocationTable, _ position: Int, _ window: ReadWindow?, _ body: (SampleView, AnyObject?) throws -> Void
    ) throws {
        let start = Int(table.memberStarts[position])
        let end = Int(table.memberStarts[position + 1])
        let index = table.globalIndexes.map { Int($0[position]) } ?? position
        return try table.members.withUnsafeBufferPointer { all in
            let rows = UnsafeBufferPointer(rebasing: all[start..<end])
            return try table.keyBytes.withUnsafeBytes { keys in
                let key = UnsafeRawBufferPointer(
                    rebasing: keys[Int(table.keyStarts[position])..<Int(table.keyStarts[position + 1])])
                return try withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rows.count, 1)) { lengths in
                    for i in 0..<rows.count {
                        let l = rows[i].length32
                        lengths[i] = l == UInt32.max ? Int(table.longLengths[start + i] ?? Int64(l)) : Int(l)
                    }
                    let sizes = UnsafeBufferPointer(rebasing: lengths[0..<rows.count])
                    return try withBytes(rows, sizes, window, key, table.extensionNames) { pointers, keeper in
                        try body(
                            SampleView(
                                position: position, index: index, keyBytes: key, rows: rows, pointers: pointers,
                                lengths: sizes, names: table.extensionNames), keeper)
                    }
                }
            }
        }
    }

    // MARK: Location file path

    /// Reads the sample through its slot of the location file, or from the index when the slot
    /// fails its checks (``LocationFile/withRecord(_:_:)`` then returns nil): a damaged location
    /// file never changes the bytes returned.
    private func withFileSample(
        _ file: LocationFile, _ position: Int, _ window: ReadWindow?, _ body: (SampleView, AnyObject?) throws -> Void
    ) throws {
        let index = splitIndexes.map { Int($0[position]) } ?? position
        let read: Void? = try file.withRecord(index) { record in
            // The count is checked against the bytes read: at most one member per 24 of them.
            let count = record.memberCount
            return try withUnsafeTemporaryAllocation(of: PackedMember.self, capacity: max(count, 1)) { rows in
                try withUnsafeTemporaryAllocation(of: Int.self, capacity: max(count, 1)) { lengths in
                    var n = 0
                    for i in 0..<count {
                        let m = record.member(i)
                        guard selectedExtensions[m.ext] else { continue }
                        rows.initializeElement(
                            at: n,
                            to: PackedMember(
                                offset: m.offset, ext: m.ext, length: 0, shard: m.shard, extended: m.isExtended))
                        lengths.initializeElement(at: n, to: Int(m.length))
                        n += 1
                    }
                    let sizes = UnsafeBufferPointer(rebasing: lengths[0..<n])
                    let members = UnsafeBufferPointer(rebasing: rows[0..<n])
                    return try withBytes(members, sizes, window, record.key, file.extensionNames) { pointers, keeper in
                        try body(
                            SampleView(
                                position: position, index: index, keyBytes: record.key, rows: members,
                                pointers: pointers, lengths: sizes, names: file.extensionNames), keeper)
                    }
                }
            }
        }
        // nil: the slot failed its checks.
        if read != nil { return }
        try withQueriedSample(position, window, body)
    }

    // MARK: Statement path

    private func withQueriedSample(
        _ position: Int, _ window: ReadWindow?, _ body: (SampleView, AnyObject?) throws -> Void
    ) throws {
        let found = try pool.with { reader in
            try Self.queryMembers(
                reader, position: position, splitID: splitID, extensions: extensions, shards: shards,
                shardNumbers: shardNumbers, indexPath: path)
        }
        var rows: [PackedMember] = []
        var lengths: [Int] = []
        var names: [String] = []
        for m in found.members {
            guard let shard = shardNumbers[m.location.shardID] else {
                throw IndexError.invalidArgument(
                    "the index lists a member in shard #\(m.location.shardID), which it does not list")
            }
            var ext = names.firstIndex(of: m.ext)
            if ext == nil {
                names.append(m.ext)
                ext = names.count - 1
            }
            let extended = m.location.headerOffset < m.location.dataOffset - Int64(MemberHeaderCheck.blockSize)
            rows.append(
                PackedMember(offset: m.location.dataOffset, ext: ext!, length: 0, shard: shard, extended: extended))
            lengths.append(Int(m.location.length))
        }
        return try rows.withUnsafeBufferPointer { rows in
            try lengths.withUnsafeBufferPointer { sizes in
                try found.key.withUnsafeBytes { key in
                    try withBytes(rows, sizes, window, key, names) { pointers, keeper in
                        try body(
                            SampleView(
                                position: position, index: found.index, keyBytes: key, rows: rows, pointers: pointers,
                                lengths: sizes, names: names), keeper)
                    }
                }
            }
        }
    }

    // MARK: Bytes

    /// Calls `body` with a pointer to each member's first byte, from the ``ByteSource``, which
    /// checks each member's own tar header against the index (unless ``verifiesHeaders`` is off),
    /// and with the object that keeps those bytes valid: `key` is the sample's key, `names` the
    /// extension names the rows' numbers refer to.
    ///
    /// - Throws: ``MemberHeaderError`` when a header does not match; `IOError`,
    ///   ``ShardChangedError``; what `body` throws.
    private func withBytes(
        _ rows: UnsafeBufferPointer<PackedMember>, _ lengths: UnsafeBufferPointer<Int>, _ window: ReadWindow?,
        _ key: UnsafeRawBufferPointer, _ names: [String],
        _ body: (UnsafeBufferPointer<UnsafeRawPointer?>, AnyObject?) throws -> Void
    ) throws {
        try withUnsafeTemporaryAllocation(of: UnsafeRawPointer?.self, capacity: max(rows.count, 1)) { slots in
            let reads = MemberReads(rows: rows, lengths: lengths, key: key, names: names)
            let keeper = try source.locate(reads, window: window, into: slots)
            return try withExtendedLifetime(keeper) {
                try body(UnsafeBufferPointer(rebasing: slots[0..<rows.count]), keeper)
            }
        }
    }
}

/// Read-only connections to the index for statement lookups, one per concurrent caller.
final class ConnectionPool: Sendable {
    private final class Connection: @unchecked Sendable {
        let reader: IndexReader
        init(_ reader: IndexReader) { self.reader = reader }
    }

    /// The index path as given, for messages.
    private let path: String
    /// Where new connections open the index: `path` made absolute when the pool was made, so
    /// that a process that changes directory later (a notebook's `os.chdir`, a forked worker)
    /// still finds a relatively given index.
    let location: String
    private let idle: Mutex<[Connection]>

    /// A pool holding `first`, or empty (connections are opened on first use), opening new
    /// connections at `location` (nil: `path` made absolute now).
    init(path: String, location: String? = nil, first: IndexReader?) {
        self.path = path
        self.location = location ?? Paths.absolute(path)
        idle = Mutex(first.map { [Connection($0)] } ?? [])
    }

    /// Runs `body` with a connection no other thread is using.
    ///
    /// - Throws: what `body` throws; an ``IndexFileError`` saying another process is writing the
    ///   index when a lookup waited out the busy timeout (a writer took its lock after the
    ///   dataset opened), instead of SQLite's bare "database is locked".
    func with<R>(_ body: (IndexReader) throws -> R) throws -> R {
        let taken = idle.withLock { $0.popLast() }
        let connection = try taken ?? Connection(IndexReader(path: location))
        defer { idle.withLock { $0.append(connection) } }
        do {
            return try body(connection.reader)
        } catch let error as SQLiteError where error.code == .busy {
            throw IndexFile.busy(path)
        }
    }
}

/// A window of one shard's bytes for sequential `pread` reads (``Dataset/forEachSample(_:)``):
/// a sample inside the window is served from it; otherwise the window is refilled with one read of
/// at least ``blockSize`` bytes starting at that sample. When the samples use less than a quarter
/// of what the windows read (a selection of small members among large ones: the `.npy` arrays
/// beside the images), reading ahead would copy mostly bytes nobody wants, so the window turns
/// itself off and each sample is read on its own. Owned by one call, never shared.
///
/// A window made with ``FetchedRanges`` (a batch of remote samples fetched together) serves the
/// samples it holds from there and reads nothing ahead.
package final class ReadWindow {
    /// The batch's samples fetched ahead (remote shards), or nil.
    let fetched: FetchedRanges?

    /// How much one refill reads: enough to make the syscall cost small against the copy.
    static let blockSize = 1 << 20

    private var buffer: UnsafeMutableRawBufferPointer
    private var shard = -1
    private var start: Int64 = 0
    private var count = 0
    /// Bytes read into windows and bytes of samples served from them, after the first refill.
    private var read = 0
    private var served = 0
    /// Whether reading ahead was turned off.
    private(set) var isOff = false

    /// An empty window: the buffer is allocated on the first refill, so a pass over a source that
    /// does not copy (the preload, mappings) never allocates it.
    init() {
        buffer = .allocate(byteCount: 0, alignment: 16)
        fetched = nil
    }

    /// A window over samples fetched together, which never reads ahead.
    init(fetched: FetchedRanges) {
        buffer = .allocate(byteCount: 0, alignment: 16)
        self.fetched = fetched
        isOff = true
    }

    deinit { buffer.deallocate() }

    /// A pointer to bytes `from ..< from + count` of `shard`, valid until the next call, or nil
    /// when reading ahead is off (read the sample directly); `fill` reads into the buffer at an
    /// offset of the shard and returns how many bytes it read (at least `count`, or it throws).
    func bytes(
        shard: Int, from: Int64, count: Int, _ fill: (UnsafeMutableRawBufferPointer, Int64) throws -> Int
    ) throws -> UnsafeRawPointer? {
        if isOff { return nil }
        if shard == self.shard, from >= start, from + Int64(count) <= start + Int64(self.count) {
            served += count
            return UnsafeRawPointer(buffer.baseAddress! + Int(from - start))
        }
        // Judge after 16 MiB of windows: mostly unused bytes turn reading ahead off.
        if read >= 16 << 20, served < read / 4 {
            isOff = true
            buffer.deallocate()
            buffer = .allocate(byteCount: 0, alignment: 16)
            return nil
        }
        if max(Self.blockSize, count) > buffer.count {
            buffer.deallocate()
            buffer = .allocate(byteCount: max(Self.blockSize, count), alignment: 16)
        }
        self.shard = -1
        let n = try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<max(Self.blockSize, count)]), from)
        self.shard = shard
        start = from
        self.count = n
        read += n
        served += count
        return UnsafeRawPointer(buffer.baseAddress!)
    }
}

import Dispatch
import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

/// A dataset of 12 shards for the strategy tests: samples with `jpg` (0 bytes to 100 kB, so that
/// some members are far apart), `cls`, and `json` on most, and a `val` split in shuffled order.
struct StrategyFixture {
    let directory: TemporaryDirectory
    let index: String
    /// Every sample's members by key.
    var members: [SampleKey: [String: [UInt8]]] = [:]
    /// Keys in global order.
    var keys: [SampleKey] = []

    init(shards: Int = 12, perShard: Int = 7) throws {
        directory = try TemporaryDirectory()
        var paths: [String] = []
        for s in 0..<shards {
            var files: [(String, [UInt8])] = []
            for i in 0..<perShard {
                let n = s * perShard + i
                let key = s % 3 == 0 ? "dir\(s)/k\(n)" : "k\(n)"
                let jpgSize = n % 9 == 4 ? 100_000 + n : (n % 11 == 0 ? 0 : 37 * n % 3000)
                var sample: [String: [UInt8]] = [
                    "jpg": pattern(jpgSize, seed: n), "cls": Array(String(n % 10).utf8),
                ]
                files.append(("\(key).jpg", sample["jpg"]!))
                files.append(("\(key).cls", sample["cls"]!))
                if n % 5 != 2 {
                    sample["json"] = Array("{\"n\": \(n)}".utf8)
                    files.append(("\(key).json", sample["json"]!))
                }
                members[SampleKey(key)] = sample
                keys.append(SampleKey(key))
            }
            let path = directory.path + "/shard-\(s).tar"
            try writeShard(path, files, format: s % 2 == 0 ? .ustar : .pax)
            paths.append(path)
        }
        index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: paths)
        _ = try SplitEditor.assign(
            index: index, split: nil, selection: .ratios(try SplitRatios(parsing: "train=0.67,val=0.33"), seed: 7))
    }

    /// The expected sample at each position of `split` (nil: the whole dataset), limited to `exts`.
    func expected(split: String?, exts: [String]?) throws -> [ExpectedSample] {
        let reader = try IndexReader(path: index)
        let count = try split.map { try reader.sampleCount(inSplit: $0) } ?? reader.sampleCount()
        return try (0..<count).map { p in
            let key = try split.map { try reader.sample(at: p, inSplit: $0).key } ?? reader.sample(at: p).key
            var m = members[key]!
            if let exts { m = m.filter { exts.contains($0.key) } }
            return ExpectedSample(key: key, members: m)
        }
    }
}

/// Reads every position of `dataset` from `threads` threads at once (each in its own order) and
/// returns the positions whose sample differed from `expected`.
func concurrentMismatches(_ dataset: Dataset, _ expected: [ExpectedSample], threads: Int = 4) -> [String] {
    let problems = Mutex<[String]>([])
    let count = dataset.count
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        for i in 0..<count {
            let p = (i * 7 + t * 3) % count
            do {
                let s = try dataset[p]
                let e = expected[p]
                if s.key != e.key || s.members != e.members || s.position != p {
                    problems.withLock { $0.append("position \(p) read by thread \(t): \(s.key) != \(e.key)") }
                }
                let viewBytes = try dataset.withSample(at: p) { view in view.map { Array($0.bytes) } }
                if viewBytes != s.extensions.map({ s.members[$0]! }) {
                    problems.withLock { $0.append("position \(p): the view's bytes differ from the copy's") }
                }
            } catch {
                problems.withLock { $0.append("position \(p): \(error)") }
            }
        }
    }
    return problems.withLock { $0 }
}

@Suite("Dataset: memory, mmap and pread strategies")
struct DatasetStrategyTests {
    static let strategies: [LoadingStrategy] = [.memory, .mmap, .pread]
    static let lookups: [Dataset.LookupMode] = [.table, .file, .statements]

    static func mode(of lookup: Dataset.Lookup) -> Dataset.LookupMode {
        switch lookup {
        case .table: .table
        case .file: .file
        case .statements: .statements
        }
    }

    @Test(
        "every strategy and lookup returns the same bytes for every member, from 4 threads at once",
        arguments: [nil, "val"] as [String?])
    func identicalBytes(split: String?) throws {
        let f = try StrategyFixture()
        for exts in [nil, ["cls", "jpg"], ["json"]] as [[String]?] {
            let expected = try f.expected(split: split, exts: exts)
            #expect(expected.count > 0 && expected.count <= 84)
            for strategy in Self.strategies {
                for lookup in Self.lookups where strategy != .memory || lookup == .table {
                    let ds = try Dataset(
                        index: f.index, split: split, extensions: exts, strategy: strategy,
                        options: Dataset.Options(lookup: lookup))
                    #expect(ds.strategy == strategy)
                    #expect(ds.choice.reason == "requested")
                    #expect(ds.count == expected.count)
                    #expect(Self.mode(of: ds.lookup) == lookup)
                    let problems = concurrentMismatches(ds, expected)
                    #expect(
                        problems.isEmpty, "\(strategy) \(lookup) split \(split ?? "-") exts \(exts ?? []): \(problems)")
                }
            }
        }
    }

    @Test("members come in archive order; keys resolve to positions in the dataset or split")
    func orderAndKeys() throws {
        let f = try StrategyFixture()
        for lookup in Self.lookups {
            let all = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: lookup))
            #expect(try all[0].extensions == ["jpg", "cls", "json"])
            #expect(try all[2].extensions == ["jpg", "cls"])
            #expect(try all.position(forKey: SampleKey("k10")) == 10)
            #expect(try all.sample(forKey: SampleKey("dir3/k22")).members == f.members[SampleKey("dir3/k22")])
            let unknown = try #require(caught { _ = try all.position(forKey: SampleKey("nope")) })
            #expect(unknown as? IndexError == .unknownKey(SampleKey("nope")))

            let val = try Dataset(index: f.index, split: "val", options: Dataset.Options(lookup: lookup))
            let expected = try f.expected(split: "val", exts: nil)
            for (p, e) in expected.enumerated() {
                #expect(try val.position(forKey: e.key) == p)
                #expect(try val.key(at: p) == e.key)
            }
            let reader = try IndexReader(path: f.index)
            for p in 0..<val.count { #expect(try val.globalIndex(at: p) == reader.sample(at: p, inSplit: "val").index) }
            let trainKey = try reader.sample(at: 0, inSplit: "train").key
            let outside = try #require(caught { _ = try val.sample(forKey: trainKey) })
            #expect(outside as? IndexError == .keyNotInSplit(trainKey, split: "val"))
            #expect(
                String(describing: outside)
                    == "sample '\(trainKey)' is not in split 'val'; open the dataset without a split to read it"
            )
            #expect(
                (outside as? IndexError)?.message(.commandLine)
                    == "sample '\(trainKey)' is not in split 'val'; open the dataset without a split to read it, or list the split's keys with `shardstore ls INDEX --split val`"
            )
        }
    }

    @Test("forEachSample visits every sample once, shard by shard, front to back")
    func storageOrder() throws {
        let f = try StrategyFixture()
        let reader = try IndexReader(path: f.index)
        for strategy in Self.strategies {
            let val = try Dataset(index: f.index, split: "val", strategy: strategy)
            var visited: [Int] = []
            var bytes: [[UInt8]] = []
            try val.forEachSample { view in
                visited.append(view.position)
                bytes.append(view.flatMap { Array($0.bytes) })
            }
            #expect(Set(visited) == Set(0..<val.count))
            #expect(visited.count == val.count)
            #expect(visited == val.storageOrder())
            // Global indexes rise along the visit: shard order, then offset order.
            let globals = try visited.map { try val.globalIndex(at: $0) }
            #expect(globals == globals.sorted())
            for (p, b) in zip(visited, bytes) {
                let s = try val[p]
                #expect(b == s.extensions.flatMap { s.members[$0]! })
            }
            #expect(try reader.sample(at: globals[0]).key == val.key(at: visited[0]))
        }
    }

    @Test(
        "forEachSample with pread reads ahead: members and runs of samples larger than the 1 MiB window, every lookup")
    func preadWindow() throws {
        let directory = try TemporaryDirectory()
        var files: [(String, [UInt8])] = []
        var source: [SampleKey: [String: [UInt8]]] = [:]
        for n in 0..<40 {
            let size = n == 7 ? 3_000_001 : (n % 3 == 0 ? 200_000 + n : 1000 + n)
            let key = String(format: "s%03d", n)
            source[SampleKey(key)] = ["bin": pattern(size, seed: n), "cls": Array(String(n).utf8)]
            files.append(("\(key).bin", source[SampleKey(key)]!["bin"]!))
            files.append(("\(key).cls", source[SampleKey(key)]!["cls"]!))
        }
        let shard = directory.path + "/big.tar"
        try writeShard(shard, files)
        let index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [shard])
        for lookup in [Dataset.LookupMode.table, .file, .statements] {
            let dataset = try Dataset(index: index, strategy: .pread, options: Dataset.Options(lookup: lookup))
            var seen = 0
            try dataset.forEachSample { view in
                #expect(view.position == seen)
                let expected = source[view.key]!
                #expect(view.extensions.sorted() == ["bin", "cls"])
                for ext in ["bin", "cls"] { #expect(view[ext].map { Array($0) } == expected[ext]) }
                seen += 1
            }
            #expect(seen == 40)
        }

        // Small members among large ones: after 16 MiB of windows that are mostly unused, reading
        // ahead turns off; the bytes stay right either way.
        var sparseFiles: [(String, [UInt8])] = []
        for n in 0..<120 {
            sparseFiles.append((String(format: "t%03d.big", n), pattern(200_000, seed: n)))
            sparseFiles.append((String(format: "t%03d.small", n), pattern(100 + n, seed: n + 1)))
        }
        let sparseShard = directory.path + "/sparse.tar"
        try writeShard(sparseShard, sparseFiles)
        let sparseIndex = directory.path + "/sparse.sqlite"
        _ = try Ingest.run(index: sparseIndex, shards: [sparseShard])
        for lookup in [Dataset.LookupMode.table, .file] {
            let small = try Dataset(
                index: sparseIndex, extensions: ["small"], strategy: .pread, options: Dataset.Options(lookup: lookup))
            var seen = 0
            try small.forEachSample { view in
                #expect(view.extensions == ["small"])
                #expect(view["small"].map { Array($0) } == pattern(100 + seen, seed: seen + 1))
                seen += 1
            }
            #expect(seen == 120)
        }

        // A shard truncated after open: the read ahead stops at the real end and names it.
        let dataset = try Dataset(index: index, strategy: .pread)
        let last = try IndexReader(path: index).sample(at: 39)
        let bin = last.members.first { $0.ext == "bin" }!.location
        let cls = last.members.first { $0.ext == "cls" }!.location
        let cut = bin.dataOffset + 10
        // The read starts at the .bin member's own header, 512 bytes before its data.
        let span = cls.dataOffset + cls.length - (bin.dataOffset - 512)
        #expect(truncate(shard, off_t(cut)) == 0)
        var visited = 0
        let error = #expect(throws: ShardChangedError.self) { try dataset.forEachSample { _ in visited += 1 } }
        #expect(visited == 39)
        #expect(
            error?.description
                == "cannot read '\(try Paths.real(shard))' (the shard ends at byte \(cut) but \(span) bytes are needed from offset \(bin.dataOffset - 512); it was truncated after the dataset was opened: run `shardstore ingest` again)"
        )
    }

    @Test("more shards than the cap: at most that many descriptors or mappings are open, and bytes are right")
    func boundedShards() throws {
        let f = try StrategyFixture(shards: 12, perShard: 3)
        let expected = try f.expected(split: nil, exts: nil)
        for strategy in [LoadingStrategy.mmap, .pread] {
            let ds = try Dataset(index: f.index, strategy: strategy, options: Dataset.Options(maxOpenShards: 3))
            #expect(concurrentMismatches(ds, expected, threads: 3).isEmpty, "\(strategy)")
            for p in 0..<ds.count { _ = try ds[p] }
            let open = try openShardHandles(in: f.directory.path, strategy: strategy)
            #expect(open >= 1 && open <= 3, "\(strategy): \(open) shards open")
            withExtendedLifetime(ds) {}
        }
        // Without a cap below the shard count, every shard stays open.
        let ds = try Dataset(index: f.index, strategy: .pread)
        #expect(try openShardHandles(in: f.directory.path, strategy: .pread) == 12)
        withExtendedLifetime(ds) {}
    }

    /// Open descriptors (pread) or mappings (mmap) of shard files under `directory` in this process.
    func openShardHandles(in directory: String, strategy: LoadingStrategy) throws -> Int {
        let prefix = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path + "/shard-"
        if strategy == .mmap {
            // /proc files report size 0: read them to the end instead of by their size.
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps"))
            defer { try? handle.close() }
            let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
            return maps.split(separator: "\n").filter { $0.contains(prefix) }.count
        }
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
        return fds.filter { fd in
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)) ?? "").hasPrefix(
                prefix)
        }.count
    }

    @Test("a writer that locks the index after the dataset opened: lookups wait the busy timeout, then say so in words")
    func busyAfterOpen() throws {
        let f = try StrategyFixture(shards: 2, perShard: 3)
        let ds = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .statements))
        #expect(try ds[0].key == f.keys[0])
        // Another process takes the EXCLUSIVE lock (as a writer does while it commits).
        let writer = try SQLiteWriterProcess(path: f.index, lock: .exclusive, holdSeconds: 30)
        defer { writer.stop() }
        let error = try #require(caught { _ = try ds[1] })
        #expect(
            String(describing: error)
                == "index '\(f.index)': another process is writing this index (waited 5 s for it); try again when it has finished"
        )
    }

    @Test("--strategy memory on a selection larger than the available memory is refused before any allocation")
    func memoryStrategyTooBig() throws {
        let f = try StrategyFixture(shards: 2, perShard: 3)
        let all = try Dataset(index: f.index, strategy: .pread)
        let tiny = Dataset.Options(memory: MemoryFigures(memAvailable: 100))
        let error = try #require(caught { _ = try Dataset(index: f.index, strategy: .memory, options: tiny) })
        #expect(
            String(describing: error)
                == "the memory strategy would read \(all.selectionBytes) bytes into RAM, more than the 100 bytes available; use strategy 'mmap' or 'pread', or strategy 'auto' to choose"
        )
        #expect(
            (error as? DatasetError)?.message(.commandLine)
                == "the memory strategy would read \(all.selectionBytes) bytes into RAM, more than the 100 bytes available; use --strategy mmap or pread, or --strategy auto to choose"
        )
        // Enough memory: the preload goes ahead.
        let roomy = Dataset.Options(memory: MemoryFigures(memAvailable: all.selectionBytes))
        #expect(try Dataset(index: f.index, strategy: .memory, options: roomy).strategy == .memory)
    }

    @Test("access .sequential: auto maps the shards and looks positions up in the location file, never preloads")
    func sequentialAccess() throws {
        let f = try StrategyFixture(shards: 3, perShard: 5)
        let roomy = MemoryFigures(memAvailable: 64 << 30)
        let pass = try Dataset(index: f.index, options: Dataset.Options(memory: roomy, access: .sequential))
        #expect(pass.strategy == .mmap)
        #expect(pass.lookup == .file(path: f.index + "-locations"))
        #expect(
            pass.choice.reason
                == "mmap: a sequential pass reads each byte once and keeps nothing, so nothing is preloaded")
        var seen: [ExpectedSample] = []
        try pass.forEachSample { view in
            seen.append(
                ExpectedSample(
                    key: view.key, members: Dictionary(uniqueKeysWithValues: view.map { ($0.ext, Array($0.bytes)) })))
        }
        #expect(seen == (try f.expected(split: nil, exts: nil)))
        // A strategy or lookup asked for is kept; under the mmap floor, pread with its own reason.
        let memory = try Dataset(
            index: f.index, strategy: .memory, options: Dataset.Options(memory: roomy, access: .sequential))
        #expect(memory.strategy == .memory && memory.choice.reason == "requested")
        let table = try Dataset(
            index: f.index, options: Dataset.Options(memory: roomy, lookup: .table, access: .sequential))
        if case .table = table.lookup {} else { Issue.record("expected the table, got \(table.lookup)") }
        let tiny = try Dataset(
            index: f.index, options: Dataset.Options(memory: MemoryFigures(override: 100), access: .sequential))
        #expect(tiny.strategy == .pread && tiny.choice.reason.hasPrefix("pread: "))
        #expect(try tiny[3] == pass[3])
    }

    @Test("auto with injected memory figures: memory on a big host, pread and SQL lookups on a tiny budget")
    func autoChoice() throws {
        let f = try StrategyFixture(shards: 2, perShard: 3)
        let big = try Dataset(index: f.index, options: Dataset.Options(memory: MemoryFigures(memAvailable: 64 << 30)))
        #expect(big.strategy == .memory)
        #expect(big.choice.reason.hasPrefix("memory: the selection needs "))
        #expect(big.choice.reason.hasSuffix(" are available (MemAvailable); it fits in half"))
        if case .table = big.lookup {} else { Issue.record("expected the table, got \(big.lookup)") }

        let container = try Dataset(
            index: f.index,
            options: Dataset.Options(
                memory: MemoryFigures(memAvailable: 64 << 30, cgroupLimit: 1 << 20, cgroupUsage: 1 << 19)))
        #expect(container.strategy == .memory)
        #expect(container.choice.reason.hasSuffix("and this cgroup may still use 524 kB; it fits in half"))

        let tiny = try Dataset(index: f.index, options: Dataset.Options(memory: MemoryFigures(override: 100)))
        #expect(tiny.strategy == .pread)
        #expect(tiny.lookup == .file(path: f.index + "-locations"))
        #expect(tiny.choice.reason.hasPrefix("pread: the location table alone would need "))
        #expect(try tiny[0] == big[0])

        let plan = try Dataset.plan(index: f.index, options: Dataset.Options(memory: MemoryFigures(override: 100)))
        #expect(plan.choice == tiny.choice)
        #expect(plan.count == 6)

        // Without the table by choice, auto never picks memory and says why, with the real figures.
        let file = try Dataset(
            index: f.index, options: Dataset.Options(memory: MemoryFigures(memAvailable: 64 << 30), lookup: .file))
        #expect(file.strategy == .mmap)
        #expect(
            file.choice.reason
                == "mmap: lookup 'file' keeps no location table, which the memory strategy needs; 68.7 GB are available (MemAvailable), at least the 64 MiB floor for mmap"
        )
        #expect(
            file.choice.reason(.commandLine)
                == "mmap: --lookup file keeps no location table, which the memory strategy needs; 68.7 GB are available (MemAvailable), at least the 64 MiB floor for mmap"
        )
        let statements = try Dataset(
            index: f.index, options: Dataset.Options(memory: MemoryFigures(override: 1 << 20), lookup: .statements))
        #expect(statements.strategy == .pread)
        #expect(
            statements.choice.reason
                == "pread: lookup 'statements' keeps no location table, which the memory strategy needs; SHARDSTORE_MEMORY_LIMIT allows 1.0 MB, under the 64 MiB floor for mmap"
        )
        #expect(try file[5] == big[5] && statements[5] == big[5])
    }

    @Test("unknown extensions and positions are refused with what exists")
    func badSelections() throws {
        let f = try StrategyFixture(shards: 2, perShard: 3)
        for lookup in Self.lookups {
            let error = try #require(
                caught {
                    _ = try Dataset(
                        index: f.index, extensions: ["JPEG", ".cls"], options: Dataset.Options(lookup: lookup))
                })
            #expect(
                String(describing: error)
                    == "no member has extension '.jpeg' (extensions: .cls, .jpg, .json)")
            let ds = try Dataset(index: f.index, extensions: [".CLS"], options: Dataset.Options(lookup: lookup))
            #expect(ds.extensions == ["cls"])
            #expect(try ds[5].members == ["cls": Array("5".utf8)])
            let out = try #require(caught { _ = try ds.withSample(at: 6) { _ in 0 } })
            #expect(out as? IndexError == .indexOutOfRange(index: 6, count: 6, split: nil))
        }
    }

    @Test("a shard truncated after open: pread names the shard and offset, memory still serves its copy")
    func truncatedAfterOpen() throws {
        let f = try StrategyFixture(shards: 1, perShard: 5)
        let shard = f.directory.path + "/shard-0.tar"
        let pread = try Dataset(index: f.index, strategy: .pread)
        let memory = try Dataset(index: f.index, strategy: .memory)
        let before = try memory[4]
        #expect(truncate(shard, 1024) == 0)  // the same file, shorter: the open descriptor sees it
        let error = try #require(caught { _ = try pread[4] })
        #expect(error is ShardChangedError)
        let text = String(describing: error)
        #expect(text.contains("shard-0.tar"), "\(text)")
        #expect(
            text.contains("it was truncated after the dataset was opened: run `shardstore ingest` again"), "\(text)")
        #expect(try memory[4] == before)
    }
}

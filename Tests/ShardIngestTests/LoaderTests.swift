import ShardStore
import ShardTestSupport
import Testing

/// A dataset for the loader: 23 samples over 3 shards, each with a float32 (2, 3) `.npy` holding
/// n, n+1, ..., a `.cls` of n % 5, and a `.jpg` of 40 + n bytes (sample 7 has none).
struct LoaderFixture {
    let directory: TemporaryDirectory
    let index: String
    static let count = 23

    static func npy(_ n: Int) -> [UInt8] {
        var text = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".utf8)
        text += [UInt8](repeating: 0x20, count: (64 - (10 + text.count + 1) % 64) % 64)
        text.append(0x0A)
        var data: [UInt8] = []
        for i in 0..<6 {
            let bits = Float(n + i).bitPattern
            data += (0..<4).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) }
        }
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text + data
    }

    static func jpg(_ n: Int) -> [UInt8] { pattern(40 + n, seed: n) }

    init() throws {
        directory = try TemporaryDirectory()
        index = directory.path + "/index.sqlite"
        var shards: [String] = []
        for s in 0..<3 {
            var files: [(String, [UInt8])] = []
            for n in stride(from: s * 8, to: min(s * 8 + 8, Self.count), by: 1) {
                let key = "s\(n < 10 ? "0" : "")\(n)"
                files.append(("\(key).npy", Self.npy(n)))
                files.append(("\(key).cls", Array("\(n % 5)\n".utf8)))
                if n != 7 { files.append(("\(key).jpg", Self.jpg(n))) }
            }
            let path = directory.path + "/shard-\(s).tar"
            try writeShard(path, files)
            shards.append(path)
        }
        _ = try Ingest.run(index: index, shards: shards)
    }

    func dataset() throws -> Dataset { try Dataset(index: index, strategy: .pread) }
}

@Suite("Loader: batches in sampler order on reader threads, native collation, resume")
struct LoaderTests {
    /// Every batch of the loader's epoch, as dataset positions.
    static func positions(_ loader: Loader) throws -> [[Int]] {
        var out: [[Int]] = []
        while let batch = try loader.next() { out.append((0..<batch.count).map { batch.position($0) }) }
        return out
    }

    static func options(
        _ batchSize: Int, _ order: SampleOrder = .sequential, threads: Int? = nil, prefetch: Int? = nil
    ) -> LoaderOptions {
        var o = LoaderOptions(batchSize: batchSize)
        o.order = order
        o.seed = 11
        o.threads = threads
        o.prefetch = prefetch
        return o
    }

    @Test("sequential batches: positions, keys, stacked npy, int64 labels, bytes with a missing member")
    func collation() throws {
        let f = try LoaderFixture()
        let loader = try Loader(try f.dataset(), options: Self.options(5))
        #expect(loader.count == 5)
        var seen = 0
        while let batch = try loader.next() {
            let npy = try #require(batch.column("npy"))
            #expect(npy.layout == .stacked(dtype: try NPYDType(descr: "<f4"), shape: [batch.count, 2, 3]))
            let floats = npy.data.typed(Float.self)
            let cls = try #require(batch.column("cls"))
            #expect(cls.layout == .labels)
            let jpg = try #require(batch.column("jpg"))
            #expect(jpg.layout == .bytes)
            for i in 0..<batch.count {
                let n = seen + i
                #expect(batch.position(i) == n)
                #expect(batch.key(i) == SampleKey("s\(n < 10 ? "0" : "")\(n)"))
                #expect(Array(floats[(i * 6)..<(i * 6 + 6)]) == (0..<6).map { Float(n + $0) })
                #expect(cls.label(i) == Int64(n % 5))
                if n == 7 {
                    #expect(jpg.member(i) == nil)
                } else {
                    #expect(jpg.member(i).map(Array.init) == LoaderFixture.jpg(n))
                }
            }
            seen += batch.count
        }
        #expect(seen == LoaderFixture.count)
        #expect(try loader.next() == nil)
    }

    @Test("collate bytes keeps every member raw")
    func bytesMode() throws {
        let f = try LoaderFixture()
        var o = Self.options(23)
        o.collate = .bytes
        let loader = try Loader(try f.dataset(), options: o)
        let batch = try #require(try loader.next())
        for ext in ["npy", "cls", "jpg"] { #expect(batch.column(ext)?.layout == .bytes, "\(ext)") }
        #expect(batch.column("npy")?.member(3).map(Array.init) == LoaderFixture.npy(3))
        #expect(batch.column("cls")?.member(9).map(Array.init) == Array("4\n".utf8))
    }

    @Test("the order is the sampler's, whatever the threads and prefetch; epochs differ; drop_last")
    func orderIndependentOfThreads() throws {
        let f = try LoaderFixture()
        let ds = try f.dataset()
        let epoch = try EpochOrder(count: LoaderFixture.count, order: .shuffle, seed: 11, epoch: 2)
        let wanted = (0..<epoch.count).map { epoch[$0] }
        for threads in [1, 2, 4, nil] as [Int?] {
            for prefetch in [1, 3, nil] as [Int?] {
                let loader = try Loader(ds, options: Self.options(4, .shuffle, threads: threads, prefetch: prefetch))
                try loader.setEpoch(2)
                let got = try Self.positions(loader)
                #expect(
                    got.flatMap { $0 } == wanted,
                    "threads \(String(describing: threads)) prefetch \(String(describing: prefetch))")
                #expect(got.map(\.count) == [4, 4, 4, 4, 4, 3])
            }
        }
        let loader = try Loader(ds, options: Self.options(4, .shuffle))
        let first = try Self.positions(loader).flatMap { $0 }
        try loader.setEpoch(1)
        let second = try Self.positions(loader).flatMap { $0 }
        try loader.setEpoch(1)
        #expect(try Self.positions(loader).flatMap { $0 } == second)
        #expect(first != second && first.sorted() == second.sorted())
        var o = Self.options(4, .shuffle)
        o.dropLast = true
        let dropping = try Loader(ds, options: o)
        #expect(dropping.count == 5)
        #expect(try Self.positions(dropping).map(\.count) == [4, 4, 4, 4, 4])
    }

    @Test("ranks read disjoint shares that together are the epoch")
    func ranks() throws {
        let f = try LoaderFixture()
        let ds = try f.dataset()
        var all: [Int] = []
        for rank in 0..<3 {
            var o = Self.options(3, .shuffle)
            o.rank = rank
            o.worldSize = 3
            o.tail = .drop
            all += try Self.positions(try Loader(ds, options: o)).flatMap { $0 }
        }
        let epoch = try EpochOrder(count: LoaderFixture.count, order: .shuffle, seed: 11, epoch: 0)
        #expect(all.count == 21)
        #expect(Set(all) == Set((0..<21).map { epoch[$0] }))
    }

    @Test("resume: a state saved by 2 ranks continues on 1, nothing repeated or skipped")
    func resume() throws {
        let f = try LoaderFixture()
        let ds = try f.dataset()
        var taken: [Int] = []
        var saved: LoaderState?
        for rank in 0..<2 {
            var o = Self.options(4, .shuffle)
            o.rank = rank
            o.worldSize = 2
            let loader = try Loader(ds, options: o)
            try loader.setEpoch(3)
            for _ in 0..<2 {
                let batch = try #require(try loader.next())
                taken += (0..<batch.count).map { batch.position($0) }
            }
            saved = loader.state
        }
        let state = try #require(saved)
        #expect(state == LoaderState(seed: 11, epoch: 3, consumed: 16, worldSize: 2))
        let resumed = try Loader(ds, options: Self.options(4, .shuffle))
        try resumed.restore(state)
        #expect(resumed.epoch == 3)
        #expect(resumed.count == 2)
        let rest = try Self.positions(resumed).flatMap { $0 }
        let epoch = try EpochOrder(count: LoaderFixture.count, order: .shuffle, seed: 11, epoch: 3)
        #expect(Set(taken) == Set((0..<16).map { epoch[$0] }))
        #expect(rest == (16..<23).map { epoch[$0] })
        #expect(resumed.state.consumed == 23)
        var other = Self.options(4, .shuffle)
        other.seed = 12
        #expect(
            throws: LoaderError(
                "the saved state has seed 11 but this loader 12; make the loader with the saved seed")
        ) { try Loader(ds, options: other).restore(state) }
    }

    @Test("filter drops samples (positions still consumed), map transforms batches, an error surfaces at its batch")
    func filterMapErrors() throws {
        let f = try LoaderFixture()
        let ds = try f.dataset()
        var o = Self.options(6)
        o.filter = { lease in lease.position % 2 == 0 }
        o.map = { batch in
            if batch.position(0) == 6 { throw LoaderError("map refused the batch at 6") }
            return batch
        }
        let loader = try Loader(ds, options: o)
        #expect(try loader.next().map { b in (0..<b.count).map { b.position($0) } } == [0, 2, 4])
        #expect(throws: LoaderError("map refused the batch at 6")) { try loader.next() }
        #expect(try loader.next().map { b in (0..<b.count).map { b.position($0) } } == [12, 14, 16])
        #expect(loader.state.consumed == 18)
    }

    @Test("bad options are refused with what to pass; report says what auto chose")
    func options() throws {
        let f = try LoaderFixture()
        let ds = try f.dataset()
        #expect(throws: LoaderError("batch size is 0; pass 1 to 2147483647")) { try Loader(ds, options: Self.options(0)) }
        #expect(throws: LoaderError("threads is 0; pass 1 to 1024, or nil for auto")) {
            try Loader(ds, options: Self.options(2, threads: 0))
        }
        #expect(throws: LoaderError("prefetch is 0 batches; pass 1 to 1048576, or nil for auto")) {
            try Loader(ds, options: Self.options(2, prefetch: 0))
        }
        var o = Self.options(2)
        o.rank = 2
        o.worldSize = 2
        #expect(throws: SamplerError("rank is 2; with a world size of 2 it must be 0 to 1")) {
            try Loader(ds, options: o)
        }
        let loader = try Loader(ds, options: Self.options(2, threads: 3, prefetch: 5))
        _ = try loader.next()
        #expect(loader.report == "threads 3; prefetch 5 batches")
        #expect(loader.choice == (3, 5, false))
        loader.close()
        #expect(loader.report == "threads 3; prefetch 5 batches")
        #expect(loader.choice == (3, 5, false))
        let one = try Loader(ds, options: Self.options(2, threads: 1, prefetch: 1))
        #expect(one.choice == (0, 0, false))
        _ = try one.next()
        #expect(one.report == "threads 1; prefetch 1 batch")
        let auto = try Loader(ds, options: Self.options(2))
        _ = try auto.next()
        #expect(auto.report.hasPrefix("threads auto, "))
        #expect(auto.report.contains("prefetch auto, "))
    }
}

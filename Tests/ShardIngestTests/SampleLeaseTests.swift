import ShardStore
import ShardTestSupport
import Synchronization
import Testing

@Suite("Dataset: leases, byte sources, and reopening after fork")
struct SampleLeaseTests {
    static func check(_ lease: SampleLease, _ expected: ExpectedSample, _ label: String) {
        #expect(lease.sampleKey == expected.key, "\(label)")
        var got: [String: [UInt8]] = [:]
        for i in 0..<lease.count { got[lease.ext(i)] = Array(lease.bytes(i)) }
        #expect(got == expected.members, "\(label)")
    }

    @Test(
        "a lease's bytes stay right after the dataset is released and its shards evicted, every strategy and lookup",
        arguments: [nil, "val"] as [String?])
    func leasesOutliveTheDataset(split: String?) throws {
        let f = try StrategyFixture()
        let expected = try f.expected(split: split, exts: nil)
        for strategy in DatasetStrategyTests.strategies {
            for lookup in DatasetStrategyTests.lookups where strategy != .memory || lookup == .table {
                var leases: [SampleLease] = []
                do {
                    // One open shard at a time: every read past the first evicts a mapping or a
                    // descriptor that earlier leases may point into.
                    let ds = try Dataset(
                        index: f.index, split: split, strategy: strategy,
                        options: Dataset.Options(lookup: lookup, maxOpenShards: 1))
                    for p in (0..<ds.count).reversed() { leases.append(try ds.lease(at: p)) }
                }
                leases.reverse()
                #expect(leases.count == expected.count)
                for (p, lease) in leases.enumerated() {
                    #expect(lease.position == p)
                    Self.check(lease, expected[p], "\(strategy) \(lookup) position \(p)")
                }
            }
        }
    }

    @Test("a lease checks the member's own header: a shard swapped for another of the same size and time is refused")
    func leaseChecksHeaders() throws {
        let directory = try TemporaryDirectory()
        let shard = directory.path + "/a.tar"
        try writeShard(shard, [("k1.bin", pattern(700)), ("k2.bin", pattern(700, seed: 2))])
        let index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [shard])
        let time = try modificationTime(shard)
        try writeShard(shard, [("k2.bin", pattern(700, seed: 2)), ("k1.bin", pattern(700))])
        try setModificationTime(shard, seconds: Int(time / 1_000_000_000), nanoseconds: Int(time % 1_000_000_000))
        for strategy in [LoadingStrategy.mmap, .pread] {
            let ds = try Dataset(index: index, strategy: strategy)
            let error = try #require(caught { _ = try ds.lease(at: 0) })
            #expect(error is MemberHeaderError, "\(strategy): \(error)")
            #expect(ErrorCode(classifying: error) == .corrupt)
        }
    }

    @Test("a dataset reopened after fork reads the same bytes and keys, with new connections and shard caches")
    func reopenedAfterFork() throws {
        let f = try StrategyFixture()
        let expected = try f.expected(split: "val", exts: nil)
        for strategy in DatasetStrategyTests.strategies {
            for lookup in DatasetStrategyTests.lookups where strategy != .memory || lookup == .table {
                let parent = try Dataset(
                    index: f.index, split: "val", strategy: strategy,
                    options: Dataset.Options(lookup: lookup, maxOpenShards: 2))
                _ = try parent[0]
                let child = parent.reopenedAfterFork()
                #expect(child.count == parent.count)
                #expect(child.strategy == parent.strategy)
                #expect(child.lookup == parent.lookup)
                #expect(child.openedInProcess == parent.openedInProcess)
                for (p, e) in expected.enumerated() {
                    let s = try child[p]
                    #expect(s.key == e.key && s.members == e.members, "\(strategy) \(lookup) \(p)")
                    #expect(try child.position(forKey: e.key) == p)
                }
                // The parent is not disturbed.
                #expect(try parent[expected.count - 1].key == expected.last!.key)
            }
        }
    }

    @Test("ParallelLoop runs every iteration exactly once, on any width", arguments: [1, 2, 3, 64])
    func parallelLoop(width: Int) {
        for iterations in [0, 1, 5, 100] {
            let seen = Mutex([Int](repeating: 0, count: iterations))
            ParallelLoop.run(iterations: iterations, width: width) { i in seen.withLock { $0[i] += 1 } }
            #expect(seen.withLock { $0 } == [Int](repeating: 1, count: iterations), "\(iterations) on \(width)")
        }
    }
}

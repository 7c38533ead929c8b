import Foundation
import ShardStore
import ShardTestSupport
import Testing

@Suite("Incremental ingest: unchanged, changed and added shards")
struct IncrementalIngestTests {
    /// s0.tar (a0..a3) and s1.tar (b0..b3), both ingested into split `train`.
    struct Fixture {
        let dir: TemporaryDirectory
        var index: String { dir.path + "/index.sqlite" }
        var s0: String { dir.path + "/s0.tar" }
        var s1: String { dir.path + "/s1.tar" }
        var s2: String { dir.path + "/s2.tar" }

        init() throws {
            dir = try TemporaryDirectory()
            try writeShard(
                dir.path + "/s0.tar",
                (0..<4).flatMap { i in [("a\(i).jpg", pattern(100 + i, seed: i)), ("a\(i).cls", [UInt8(i)])] })
            try writeShard(dir.path + "/s1.tar", (0..<4).map { i in ("b\(i).jpg", pattern(200 + i, seed: 10 + i)) })
            try setModificationTime(dir.path + "/s0.tar", seconds: 1_600_000_000, nanoseconds: 123_456_789)
            try setModificationTime(dir.path + "/s1.tar", seconds: 1_600_000_000)
        }

        func expected(_ key: String) -> ExpectedSample {
            let i = Int(String(key.dropFirst()))!
            if key.hasPrefix("a") {
                return ExpectedSample(
                    key: SampleKey(key), members: ["jpg": pattern(100 + i, seed: i), "cls": [UInt8(i)]])
            }
            return ExpectedSample(key: SampleKey(key), members: ["jpg": pattern(200 + i, seed: 10 + i)])
        }
    }

    @Test("a second run with nothing changed skips every shard and changes no sample")
    func unchanged() throws {
        let f = try Fixture()
        let first = try Ingest.run(index: f.index, shards: [f.s0, f.s1], options: IngestOptions(split: "train"))
        #expect(first.added == ["s0.tar", "s1.tar"])
        #expect(describe(first.splitAssignment) == assigned("train", added: 8, unchanged: 0, movedFrom: [:], total: 8))
        let report = try Ingest.run(index: f.index, shards: [f.s0, f.s1])
        #expect(report.unchanged == ["s0.tar", "s1.tar"])
        #expect(report.added == [] && report.changed == [])
        #expect(report.members == 0 && report.newSamples == 0 && report.removedSamples == 0)
        #expect(report.totalSamples == 8)
        #expect(report.bytesScanned == 0)
        #expect(!report.createdIndex)
        let keys = ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]
        try expectDataset(f.index, equals: keys.map(f.expected), ordered: true)
        #expect(try splitKeys(f.index, "train") == keys.map { SampleKey($0) })
        let shards = try IndexReader(path: f.index).shards()
        #expect(shards.map(\.modificationTimeNanoseconds) == [1_600_000_000_123_456_789, 1_600_000_000_000_000_000])
    }

    @Test("a rewritten shard is re-indexed: its samples replaced, indexes dense in (shard, offset) order, splits kept")
    func changed() throws {
        let f = try Fixture()
        _ = try Ingest.run(index: f.index, shards: [f.s0, f.s1], options: IngestOptions(split: "train"))
        // s0 now: a2 (new bytes, a new extension) first, then a0 (new bytes), then a new key a9;
        // a1 and a3 are gone.
        try writeShard(
            f.s0,
            [
                ("a2.jpg", pattern(333, seed: 33)), ("a2.txt", Array("two".utf8)),
                ("a0.jpg", pattern(444, seed: 44)),
                ("a9.jpg", pattern(99, seed: 99)),
            ])
        try setModificationTime(f.s0, seconds: 1_700_000_000)
        let report = try Ingest.run(index: f.index, shards: [f.s0, f.s1])
        #expect(report.changed == ["s0.tar"])
        #expect(report.unchanged == ["s1.tar"])
        #expect(report.added == [])
        #expect(report.members == 4)
        #expect(report.newSamples == 1)
        #expect(report.removedSamples == 2)
        #expect(report.totalSamples == 7)
        #expect(report.keysSeenAgain == 0)
        try expectDataset(
            f.index,
            equals: [
                ExpectedSample(
                    key: SampleKey("a2"), members: ["jpg": pattern(333, seed: 33), "txt": Array("two".utf8)]),
                ExpectedSample(key: SampleKey("a0"), members: ["jpg": pattern(444, seed: 44)]),
                ExpectedSample(key: SampleKey("a9"), members: ["jpg": pattern(99, seed: 99)]),
                f.expected("b0"), f.expected("b1"), f.expected("b2"), f.expected("b3"),
            ], ordered: true)
        // Surviving samples keep their split; the new one is unassigned; positions dense.
        #expect(
            try keysAndSplits(f.index).map { "\($0.0):\($0.1 ?? "-")" } == [
                "a2:train", "a0:train", "a9:-", "b0:train", "b1:train", "b2:train", "b3:train",
            ])
        #expect(try splitKeys(f.index, "train") == ["a2", "a0", "b0", "b1", "b2", "b3"].map { SampleKey($0) })
        let train = try Dataset(index: f.index, split: "train")
        #expect(train.count == 6)
        #expect(try (0..<6).map { try train.globalIndex(at: $0) } == [0, 1, 3, 4, 5, 6])
        let shard = try #require(try IndexReader(path: f.index).shards().first)
        #expect(shard.size == Int64(try readBytes(f.s0).count))
        #expect(shard.modificationTimeNanoseconds == 1_700_000_000_000_000_000)
        #expect(shard.memberCount == 4)
        // And a third run finds everything unchanged.
        let again = try Ingest.run(index: f.index, shards: [f.s0, f.s1])
        #expect(again.unchanged == ["s0.tar", "s1.tar"])
        #expect(again.totalSamples == 7)
    }

    @Test("same size, different mtime: re-indexed, nothing else changes")
    func touched() throws {
        let f = try Fixture()
        _ = try Ingest.run(index: f.index, shards: [f.s0, f.s1], options: IngestOptions(split: "train"))
        try setModificationTime(f.s1, seconds: 1_600_000_001)
        let report = try Ingest.run(index: f.index, shards: [f.s0, f.s1])
        #expect(report.changed == ["s1.tar"])
        #expect(report.unchanged == ["s0.tar"])
        #expect(report.newSamples == 0 && report.removedSamples == 0)
        #expect(report.members == 4)
        #expect(report.keysSeenAgain == 0)
        let keys = ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]
        try expectDataset(f.index, equals: keys.map(f.expected), ordered: true)
        #expect(try splitKeys(f.index, "train") == keys.map { SampleKey($0) })
    }

    @Test("a changed first shard whose samples shrink: later samples move down, split positions follow")
    func changedShrinks() throws {
        let f = try Fixture()
        _ = try Ingest.run(index: f.index, shards: [f.s0, f.s1])
        _ = try SplitEditor.assign(
            index: f.index, split: "val",
            selection: .keys([SampleKey("a3"), SampleKey("b1"), SampleKey("b3")], source: "test"))
        try writeShard(f.s0, [("a3.jpg", pattern(100 + 3, seed: 3)), ("a3.cls", [3])])
        try setModificationTime(f.s0, seconds: 1_650_000_000)
        let report = try Ingest.run(index: f.index, shards: [f.s0, f.s1])
        #expect(report.changed == ["s0.tar"])
        #expect(report.removedSamples == 3)
        #expect(report.totalSamples == 5)
        try expectDataset(f.index, equals: ["a3", "b0", "b1", "b2", "b3"].map(f.expected), ordered: true)
        #expect(try splitKeys(f.index, "val") == ["a3", "b1", "b3"].map { SampleKey($0) })
        let val = try Dataset(index: f.index, split: "val")
        #expect(try (0..<val.count).map { try val.globalIndex(at: $0) } == [0, 2, 4])
        #expect(try val[2].members == f.expected("b3").members)
    }

    @Test("a new shard is added after the existing samples")
    func added() throws {
        let f = try Fixture()
        _ = try Ingest.run(index: f.index, shards: [f.s0, f.s1], options: IngestOptions(split: "train"))
        try writeShard(f.s2, [("c0.jpg", [1, 2, 3]), ("c1.jpg", [4])])
        let report = try Ingest.run(
            index: f.index, shards: [f.dir.path + "/s*.tar"], options: IngestOptions(split: nil))
        #expect(report.added == ["s2.tar"])
        #expect(report.unchanged == ["s0.tar", "s1.tar"])
        #expect(report.newSamples == 2)
        #expect(report.totalSamples == 10)
        let keys = ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]
        try expectDataset(
            f.index,
            equals: keys.map(f.expected) + [
                ExpectedSample(key: SampleKey("c0"), members: ["jpg": [1, 2, 3]]),
                ExpectedSample(key: SampleKey("c1"), members: ["jpg": [4]]),
            ], ordered: true)
        #expect(try keysAndSplits(f.index).filter { $0.1 == nil }.map(\.0) == ["c0", "c1"])
    }

    @Test("--split at ingest puts the named shards' samples in the split, moving them from another")
    func splitAtIngest() throws {
        let f = try Fixture()
        let r1 = try Ingest.run(index: f.index, shards: [f.s0], options: IngestOptions(split: "train"))
        #expect(describe(r1.splitAssignment) == assigned("train", added: 4, unchanged: 0, movedFrom: [:], total: 4))
        let r2 = try Ingest.run(index: f.index, shards: [f.s1], options: IngestOptions(split: "val"))
        #expect(describe(r2.splitAssignment) == assigned("val", added: 4, unchanged: 0, movedFrom: [:], total: 4))
        #expect(try splitKeys(f.index, "train") == ["a0", "a1", "a2", "a3"].map { SampleKey($0) })
        #expect(try splitKeys(f.index, "val") == ["b0", "b1", "b2", "b3"].map { SampleKey($0) })
        // Naming s0 again with --split val moves its samples (unchanged shard, no rescan).
        let r3 = try Ingest.run(index: f.index, shards: [f.s0], options: IngestOptions(split: "val"))
        #expect(r3.unchanged == ["s0.tar"])
        #expect(
            describe(r3.splitAssignment) == assigned("val", added: 4, unchanged: 0, movedFrom: ["train": 4], total: 8))
        #expect(try Dataset(index: f.index, split: "train").count == 0)
        #expect(
            try splitKeys(f.index, "val") == ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"].map { SampleKey($0) })
    }
}

@Suite("Incremental ingest gives what a fresh ingest of the same shards gives")
struct IncrementalEqualsFreshTests {
    /// s0: x.jpg (A), y.jpg; s1: z.jpg, x.jpg (B), x.txt. Under every policy, re-indexing s0 after
    /// touching it must leave the dataset exactly as a fresh ingest of [s0, s1] makes it.
    @Test("re-indexing an earlier shard keeps the policy's outcome", arguments: [DuplicatePolicy.first, .last, .keep])
    func touchEarlierShard(policy: DuplicatePolicy) throws {
        let dir = try TemporaryDirectory()
        let s0 = dir.path + "/s0.tar"
        let s1 = dir.path + "/s1.tar"
        try writeShard(s0, [("x.jpg", Array("A".utf8)), ("y.jpg", [1])])
        try writeShard(s1, [("z.jpg", [2]), ("x.jpg", Array("B".utf8)), ("x.txt", [3])])
        let options = IngestOptions(onDuplicate: policy)
        let incremental = dir.path + "/incremental.sqlite"
        _ = try Ingest.run(index: incremental, shards: [s0, s1], options: options)
        let fresh1 = try loadAll(Dataset(index: incremental))
        try setModificationTime(s0, seconds: 1_650_000_000)
        let report = try Ingest.run(index: incremental, shards: [s0, s1], options: options)
        #expect(report.changed == ["s0.tar"])
        let fresh = dir.path + "/fresh.sqlite"
        _ = try Ingest.run(index: fresh, shards: [s0, s1], options: options)
        let expected = try loadAll(Dataset(index: fresh))
        #expect(fresh1 == expected)
        let actual = try loadAll(Dataset(index: incremental))
        #expect(actual == expected)
        func xJPG(_ samples: [ExpectedSample]) -> [String] {
            samples.filter { $0.key == SampleKey("x") }.map { String(decoding: $0.members["jpg"] ?? [], as: UTF8.self) }
        }
        let want: [String] = policy == .first ? ["A"] : policy == .last ? ["B"] : ["A", "B"]
        #expect(xJPG(expected) == want)
        #expect(xJPG(actual) == want, "x.jpg after re-indexing s0 under --on-duplicate \(policy)")
    }

    @Test("a shard that was good and is now truncated: the re-ingest fails and changes nothing")
    func changedToCorrupt() throws {
        let dir = try TemporaryDirectory()
        let s0 = dir.path + "/s0.tar"
        var tar = try writeShard(s0, [("a.jpg", pattern(1000)), ("b.jpg", pattern(100))])
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [s0])
        let before = try readBytes(index)
        tar.truncate(to: 1600)
        try tar.write(to: s0)
        let error = try #require(caught { _ = try Ingest.run(index: index, shards: [s0]) })
        #expect(
            String(describing: error)
                == "shard 's0.tar': truncated tar header at offset 1536 (file ends at 1600); re-fetch the shard or leave it out of the ingest"
        )
        #expect(try readBytes(index) == before)
        #expect(try listing(dir.path) == ["index.sqlite", "index.sqlite-locations", "s0.tar"])
        let read = try #require(caught { _ = try Dataset(index: index)[0] })
        #expect(read is ShardChangedError)
    }

    @Test("many shards scanned on 1 or 2 threads give the same dataset in shard order")
    func jobs() throws {
        let dir = try TemporaryDirectory()
        var shards: [String] = []
        var expected: [ExpectedSample] = []
        for s in 0..<12 {
            let path = dir.path + String(format: "/part-%02d.tar", s)
            let files = (0..<(s % 4 + 1)).map { i in
                (String(format: "p%02d-%d.bin", s, i), pattern(s * 50 + i, seed: s))
            }
            try writeShard(path, files)
            shards.append(path)
            expected += files.map { ExpectedSample(key: SampleKey(String($0.0.dropLast(4))), members: ["bin": $0.1]) }
        }
        for jobs in [1, 2] {
            let index = dir.path + "/index-\(jobs).sqlite"
            let report = try Ingest.run(
                index: index, shards: [dir.path + "/part-{00..11}.tar"], options: IngestOptions(jobs: jobs))
            #expect(report.added == shards.map { Paths.basename(of: $0) })
            try expectDataset(index, equals: expected, ordered: true)
        }
    }

    @Test("a shard without members makes an empty dataset")
    func noMembers() throws {
        let dir = try TemporaryDirectory()
        var tar = TarWriter(format: .gnu)
        tar.addDirectory("d")
        tar.addFile("README", [1])
        tar.finish()
        try tar.write(to: dir.path + "/s.tar")
        let index = dir.path + "/index.sqlite"
        let report = try Ingest.run(index: index, shards: [dir.path + "/s.tar"])
        #expect(report.totalSamples == 0)
        #expect(report.skipped == skips(directories: 1, noExtension: 1))
        let ds = try Dataset(index: index)
        #expect(ds.count == 0)
        let error = try #require(caught { _ = try ds[0] })
        #expect(String(describing: error) == "index 0 is out of range: the dataset has no samples")
    }
}

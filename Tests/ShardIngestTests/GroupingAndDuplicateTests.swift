import Foundation
import ShardStore
import ShardTestSupport
import Testing

@Suite("Key grouping across a shard and across shards")
struct GroupingTests {
    @Test("non-adjacent members of one key form one sample; order is (shard, first appearance)")
    func nonAdjacent() throws {
        let dir = try TemporaryDirectory()
        let a = dir.path + "/a.tar"
        let b = dir.path + "/b.tar"
        let tarA = try writeShard(
            a,
            [
                ("k2.jpg", pattern(10, seed: 1)),  // 0
                ("k1.jpg", pattern(600, seed: 2)),  // 1024
                ("k2.txt", pattern(20, seed: 3)),  // seen again (after k1)
                ("k2.cls", pattern(3, seed: 4)),  // adjacent to the k2.txt before it: not counted
                ("k3.jpg", pattern(30, seed: 5)),
                ("k1.json", pattern(40, seed: 6)),  // seen again
            ])
        let tarB = try writeShard(
            b,
            [
                ("k4.jpg", pattern(50, seed: 7)),
                ("k3.txt", pattern(60, seed: 8)),  // seen again, across shards
                ("k1.cls", pattern(70, seed: 9)),  // seen again, across shards
                ("k1.seg.png", pattern(80, seed: 10)),  // adjacent: not counted
            ])
        let index = dir.path + "/index.sqlite"
        let report = try Ingest.run(index: index, shards: [a, b])
        #expect(report.keysSeenAgain == 4)
        #expect(report.newSamples == 4)
        #expect(report.members == 10)
        #expect(report.added == ["a.tar", "b.tar"])
        #expect(report.keysSeenAgainExamples.count == 4)
        let ex = report.keysSeenAgainExamples.map {
            "\($0.key) \($0.path)@\($0.offset) first \($0.firstPath)@\($0.firstOffset)"
        }
        let offA = tarA.entries.map(\.headerOffset)
        let offB = tarB.entries.map(\.headerOffset)
        #expect(
            ex == [
                "k2 a.tar@\(offA[2]) first a.tar@\(offA[0])",
                "k1 a.tar@\(offA[5]) first a.tar@\(offA[1])",
                "k3 b.tar@\(offB[1]) first a.tar@\(offA[4])",
                "k1 b.tar@\(offB[2]) first a.tar@\(offA[1])",
            ])
        try expectDataset(
            index,
            equals: [
                ExpectedSample(
                    key: SampleKey("k2"),
                    members: ["jpg": pattern(10, seed: 1), "txt": pattern(20, seed: 3), "cls": pattern(3, seed: 4)]),
                ExpectedSample(
                    key: SampleKey("k1"),
                    members: [
                        "jpg": pattern(600, seed: 2), "json": pattern(40, seed: 6), "cls": pattern(70, seed: 9),
                        "seg.png": pattern(80, seed: 10),
                    ]),
                ExpectedSample(
                    key: SampleKey("k3"), members: ["jpg": pattern(30, seed: 5), "txt": pattern(60, seed: 8)]),
                ExpectedSample(key: SampleKey("k4"), members: ["jpg": pattern(50, seed: 7)]),
            ], ordered: true)
        // A sample's members may live in two shards; each member records its own shard.
        let k1 = try IndexReader(path: index).sample(forKey: SampleKey("k1"))
        #expect(k1.members.map(\.ext) == ["cls", "jpg", "json", "seg.png"])
        #expect(k1.members.map(\.location.shardID) == [1, 0, 0, 1])
    }

    @Test("a later ingest adds members to samples already in the index")
    func acrossIngests() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/a.tar", [("x.jpg", [1]), ("y.jpg", [2])])
        try writeShard(dir.path + "/b.tar", [("y.txt", [3]), ("z.jpg", [4])])
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir.path + "/a.tar"])
        let report = try Ingest.run(index: index, shards: [dir.path + "/a.tar", dir.path + "/b.tar"])
        #expect(report.unchanged == ["a.tar"])
        #expect(report.added == ["b.tar"])
        #expect(report.keysSeenAgain == 1)
        #expect(report.newSamples == 1)
        #expect(report.totalSamples == 3)
        try expectDataset(
            index,
            equals: [
                ExpectedSample(key: SampleKey("x"), members: ["jpg": [1]]),
                ExpectedSample(key: SampleKey("y"), members: ["jpg": [2], "txt": [3]]),
                ExpectedSample(key: SampleKey("z"), members: ["jpg": [4]]),
            ], ordered: true)
    }

    @Test("shards are ingested in argument order, not name order")
    func argumentOrder() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/a.tar", [("a1.jpg", [1]), ("a2.jpg", [2])])
        try writeShard(dir.path + "/b.tar", [("b1.jpg", [3])])
        let index = dir.path + "/index.sqlite"
        let report = try Ingest.run(index: index, shards: [dir.path + "/b.tar", dir.path + "/a.tar"])
        #expect(report.added == ["b.tar", "a.tar"])
        #expect(try keysAndSplits(index).map(\.0) == ["b1", "a1", "a2"])
    }
}

@Suite("Duplicate (key, extension) policies")
struct DuplicatePolicyTests {
    /// Two shards: `x.jpg` in both, `x.JPG` beside `x.jpg` in the second.
    struct Fixture {
        let dir: TemporaryDirectory
        let a: String
        let b: String
        let tarA: TarWriter
        let tarB: TarWriter
        var index: String { dir.path + "/index.sqlite" }

        init() throws {
            dir = try TemporaryDirectory()
            a = dir.path + "/a.tar"
            b = dir.path + "/b.tar"
            tarA = try writeShard(a, [("x.jpg", [1, 1]), ("x.txt", [2]), ("y.jpg", [3])])
            tarB = try writeShard(b, [("z.jpg", [4]), ("x.jpg", [5, 5, 5]), ("x.JPG", [6])])
        }
    }

    @Test("error: names both shards and offsets and the options; no index is created")
    func errorPolicyNewIndex() throws {
        let f = try Fixture()
        let error = try #require(caught { _ = try Ingest.run(index: f.index, shards: [f.a, f.b]) })
        #expect(
            String(describing: error)
                == "duplicate member 'x.jpg': first at 'a.tar' offset 0, again at 'b.tar' offset \(f.tarB.entries[1].headerOffset); choose what to do with --on-duplicate first|last|keep"
        )
        #expect(f.tarB.entries[1].headerOffset == 1024)
        #expect(try listing(f.dir.path) == ["a.tar", "b.tar"])
    }

    @Test("error: an existing index is left byte for byte as it was")
    func errorPolicyExistingIndex() throws {
        let f = try Fixture()
        _ = try Ingest.run(index: f.index, shards: [f.a])
        let before = try readBytes(f.index)
        let error = try #require(caught { _ = try Ingest.run(index: f.index, shards: [f.a, f.b]) })
        #expect(
            String(describing: error)
                == "duplicate member 'x.jpg': first at 'a.tar' offset 0, again at 'b.tar' offset 1024; choose what to do with --on-duplicate first|last|keep"
        )
        #expect(try readBytes(f.index) == before)
        #expect(try listing(f.dir.path) == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations"])
    }

    @Test("x.JPG next to x.jpg in one shard is a duplicate")
    func caseFoldedDuplicate() throws {
        let dir = try TemporaryDirectory()
        let s = dir.path + "/s.tar"
        try writeShard(s, [("x.jpg", [1]), ("x.JPG", [2])])
        let error = try #require(caught { _ = try Ingest.run(index: dir.path + "/index.sqlite", shards: [s]) })
        #expect(
            String(describing: error)
                == "duplicate member 'x.jpg': first at 's.tar' offset 0, again at 's.tar' offset 1024; choose what to do with --on-duplicate first|last|keep"
        )
        let report = try Ingest.run(
            index: dir.path + "/index.sqlite", shards: [s], options: IngestOptions(onDuplicate: .first))
        #expect(report.duplicatesDropped == 1)
        #expect(try Dataset(index: dir.path + "/index.sqlite")[0].members == ["jpg": [1]])
    }

    @Test("first: the first bytes are kept, later copies counted as dropped")
    func first() throws {
        let f = try Fixture()
        let report = try Ingest.run(index: f.index, shards: [f.a, f.b], options: IngestOptions(onDuplicate: .first))
        #expect(report.duplicatesDropped == 2)
        #expect(report.duplicatesReplaced == 0 && report.duplicatesKept == 0)
        // IngestReport.members is documented as "Members written": the dropped copies are not.
        #expect(try IndexReader(path: f.index).summary().members == 4)
        #expect(report.members == 4)
        // ShardRecord.memberCount: "Regular-file members indexed from this shard".
        #expect(try IndexReader(path: f.index).shards().map(\.memberCount) == [3, 1])
        #expect(report.totalSamples == 3)
        try expectDataset(
            f.index,
            equals: [
                ExpectedSample(key: SampleKey("x"), members: ["jpg": [1, 1], "txt": [2]]),
                ExpectedSample(key: SampleKey("y"), members: ["jpg": [3]]),
                ExpectedSample(key: SampleKey("z"), members: ["jpg": [4]]),
            ], ordered: true)
    }

    @Test("last: the last bytes are kept, earlier copies counted as replaced")
    func last() throws {
        let f = try Fixture()
        let report = try Ingest.run(index: f.index, shards: [f.a, f.b], options: IngestOptions(onDuplicate: .last))
        #expect(report.duplicatesReplaced == 2)
        #expect(report.duplicatesDropped == 0 && report.duplicatesKept == 0)
        #expect(report.totalSamples == 3)
        let ds = try Dataset(index: f.index)
        let x = try ds.sample(forKey: SampleKey("x"))
        #expect(x.members == ["jpg": [6], "txt": [2]])
        #expect(
            try IndexReader(path: f.index).sample(forKey: SampleKey("x")).member("jpg")?.location
                == MemberLocation(shardID: 1, headerOffset: 2048, dataOffset: 2560, length: 1))
        #expect(try ds.sample(forKey: SampleKey("y")).members == ["jpg": [3]])
        #expect(try ds.sample(forKey: SampleKey("z")).members == ["jpg": [4]])
        #expect(try (0..<ds.count).map { try ds.globalIndex(at: $0) } == [0, 1, 2])
    }

    @Test("keep: a repeated extension starts another sample with the same key")
    func keep() throws {
        let f = try Fixture()
        let report = try Ingest.run(index: f.index, shards: [f.a, f.b], options: IngestOptions(onDuplicate: .keep))
        #expect(report.duplicatesKept == 2)
        #expect(report.newSamples == 5)
        #expect(report.totalSamples == 5)
        try expectDataset(
            f.index,
            equals: [
                ExpectedSample(key: SampleKey("x"), members: ["jpg": [1, 1], "txt": [2]]),
                ExpectedSample(key: SampleKey("y"), members: ["jpg": [3]]),
                ExpectedSample(key: SampleKey("z"), members: ["jpg": [4]]),
                ExpectedSample(key: SampleKey("x"), members: ["jpg": [5, 5, 5]]),
                ExpectedSample(key: SampleKey("x"), members: ["jpg": [6]]),
            ], ordered: true)
        let ds = try Dataset(index: f.index)
        let error = try #require(caught { _ = try ds.sample(forKey: SampleKey("x")) })
        #expect(error as? IndexError == .ambiguousKey(SampleKey("x"), indexes: [0, 3, 4]))
        #expect(
            String(describing: error)
                == "key 'x' names 3 samples (duplicates kept at ingest) at indexes 0, 3, 4; select one by index"
        )
        #expect(
            (error as? IndexError)?.message(.commandLine)
                == "key 'x' names 3 samples (duplicates kept at ingest) at indexes 0, 3, 4; select one by index with --index"
        )
        #expect(try IndexReader(path: f.index).samples(forKey: SampleKey("x")).map(\.index) == [0, 3, 4])
    }
}

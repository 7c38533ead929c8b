import Foundation
import ShardStore
import ShardTestSupport
import Testing

@Suite("Reading back: changed shards, moved folders, positions")
struct ReadTests {
    func makeIndex(_ dir: String) throws -> String {
        try writeShard(
            dir + "/s.tar", [("k0.jpg", pattern(700, seed: 1)), ("k1.jpg", pattern(10, seed: 2)), ("k1.txt", [9])])
        let index = dir + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir + "/s.tar"])
        return index
    }

    @Test("positions outside 0..<count and unknown splits are errors")
    func outOfRange() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir.path)
        let ds = try Dataset(index: index)
        #expect(ds.count == 2)
        #expect(try ds[1].members == ["jpg": pattern(10, seed: 2), "txt": [9]])
        let error = try #require(caught { _ = try ds[2] })
        #expect(error as? IndexError == .indexOutOfRange(index: 2, count: 2, split: nil))
        #expect(String(describing: error) == "index 2 is out of range: the dataset has 2 samples (valid: 0 to 1)")
        let negative = try #require(caught { _ = try ds[-1] })
        #expect(negative as? IndexError == .indexOutOfRange(index: -1, count: 2, split: nil))
        let split = try #require(caught { _ = try Dataset(index: index, split: "val") })
        #expect(split as? IndexError == .unknownSplit("val", available: []))
        #expect(String(describing: split) == "no split named 'val' (the index has no splits)")
        let key = try #require(caught { _ = try ds.sample(forKey: SampleKey("k2")) })
        #expect(key as? IndexError == .unknownKey(SampleKey("k2")))
    }

    @Test("a shard rewritten with the same size but another mtime is refused at open, with every strategy")
    func sameSizeNewMTime() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir.path)
        let shard = dir.path + "/s.tar"
        var bytes = try readBytes(shard)
        bytes[512] ^= 0xff  // first data byte of k0.jpg
        let mtime = try modificationTime(shard)
        try writeBytes(bytes, to: shard)
        try setModificationTime(shard, seconds: Int(mtime / 1_000_000_000) + 5)
        for strategy in LoadingStrategy.allCases {
            let error = try #require(caught { _ = try Dataset(index: index, strategy: strategy) })
            #expect(error is ShardChangedError)
            #expect(
                String(describing: error)
                    == "shard 's.tar' changed since ingest (modification time differs from the one recorded at ingest); run ingest again (`shardstore ingest \(index) s.tar`) before reading"
            )
        }
    }

    @Test("a shard whose size changed is refused at open, with every strategy")
    func newSize() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir.path)
        let shard = dir.path + "/s.tar"
        let size = try readBytes(shard).count
        try writeShard(shard, [("k0.jpg", [1])])
        for strategy in LoadingStrategy.allCases {
            let error = try #require(caught { _ = try Dataset(index: index, strategy: strategy) })
            #expect(
                String(describing: error)
                    == "shard 's.tar' changed since ingest (size \(size) bytes at ingest, \(try readBytes(shard).count) now); run ingest again (`shardstore ingest \(index) s.tar`) before reading"
            )
        }
    }

    @Test("a shard that vanished is refused at open, with every strategy")
    func vanished() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir.path)
        try FileManager.default.removeItem(atPath: dir.path + "/s.tar")
        for strategy in LoadingStrategy.allCases {
            let error = try #require(caught { _ = try Dataset(index: index, strategy: strategy) })
            #expect(
                String(describing: error)
                    == "shard 's.tar' is missing (it was indexed in '\(index)'); restore the file, or ingest the remaining shards into a new index"
            )
        }
    }

    @Test("a dataset folder moved with its shards still reads: shard paths are stored relative")
    func movedFolder() throws {
        let dir = try TemporaryDirectory()
        let ds = dir.path + "/ds"
        try FileManager.default.createDirectory(atPath: ds + "/shards", withIntermediateDirectories: true)
        try writeShard(ds + "/shards/a.tar", [("x.jpg", pattern(900, seed: 3)), ("x.json", Array("{}".utf8))])
        try writeShard(ds + "/b.tar", [("y.jpg", pattern(20, seed: 4))])
        // A shard outside the index's folder is stored absolute.
        try writeShard(dir.path + "/outside.tar", [("z.jpg", [5])])
        let report = try Ingest.run(
            index: ds + "/index.sqlite", shards: [ds + "/shards/a.tar", ds + "/b.tar", dir.path + "/outside.tar"])
        #expect(report.added == ["shards/a.tar", "b.tar", dir.path + "/outside.tar"])
        let expected = [
            ExpectedSample(key: SampleKey("x"), members: ["jpg": pattern(900, seed: 3), "json": Array("{}".utf8)]),
            ExpectedSample(key: SampleKey("y"), members: ["jpg": pattern(20, seed: 4)]),
            ExpectedSample(key: SampleKey("z"), members: ["jpg": [5]]),
        ]
        try FileManager.default.moveItem(atPath: ds, toPath: dir.path + "/moved")
        #expect(!FileManager.default.fileExists(atPath: ds))
        let moved = dir.path + "/moved/index.sqlite"
        #expect(
            try IndexReader(path: moved).shards().map(\.path) == ["shards/a.tar", "b.tar", dir.path + "/outside.tar"])
        try expectDataset(moved, equals: expected, ordered: true)
        // And an ingest in the new place sees the same shards as unchanged.
        let again = try Ingest.run(index: moved, shards: [dir.path + "/moved/shards/a.tar", dir.path + "/moved/b.tar"])
        #expect(again.unchanged == ["shards/a.tar", "b.tar"])
        #expect(again.added == [])
    }
}

@Suite("Keys are bytes: invalid UTF-8 and NFC/NFD spellings")
struct KeyBytesTests {
    @Test("keys with byte 0xff and NFC vs NFD spellings are distinct, byte-exact keys")
    func keyBytes() throws {
        let dir = try TemporaryDirectory()
        let ff: [UInt8] = [0xff, 0x61]
        let fe: [UInt8] = [0xfe, 0x61]
        let nfc = "caf\u{e9}"
        let nfd = "cafe\u{301}"
        #expect(Array(nfc.utf8) != Array(nfd.utf8))
        var tar = TarWriter(format: .pax)
        tar.addFile(name: ff + Array(".jpg".utf8), data: [1])
        tar.addFile(name: ff + Array(".TXT".utf8), data: [2])
        tar.addFile(name: fe + Array(".jpg".utf8), data: [3])
        tar.addFile(nfc + ".jpg", [4])
        tar.addFile(nfd + ".jpg", [5])
        tar.addFile(name: Array("d\u{e9}/".utf8) + [0xff] + Array(".bin".utf8), data: [6])
        tar.finish()
        try tar.write(to: dir.path + "/s.tar")
        let index = dir.path + "/index.sqlite"
        let report = try Ingest.run(index: index, shards: [dir.path + "/s.tar"])
        #expect(report.newSamples == 5)
        #expect(report.duplicatesKept == 0)
        let dirKey = Array("d\u{e9}/".utf8) + [0xff]
        try expectDataset(
            index,
            equals: [
                ExpectedSample(key: SampleKey(bytes: ff), members: ["jpg": [1], "txt": [2]]),
                ExpectedSample(key: SampleKey(bytes: fe), members: ["jpg": [3]]),
                ExpectedSample(key: SampleKey(nfc), members: ["jpg": [4]]),
                ExpectedSample(key: SampleKey(nfd), members: ["jpg": [5]]),
                ExpectedSample(key: SampleKey(bytes: dirKey), members: ["bin": [6]]),
            ], ordered: true)
        let ds = try Dataset(index: index)
        #expect(try ds[0].key.bytes == ff)
        #expect(try ds.sample(forKey: SampleKey(bytes: ff)).members == ["jpg": [1], "txt": [2]])
        #expect(try ds.sample(forKey: SampleKey(nfc)).members == ["jpg": [4]])
        #expect(try ds.sample(forKey: SampleKey(nfd)).members == ["jpg": [5]])
        #expect(try ds.sample(forKey: SampleKey(bytes: dirKey)).index == 4)

        #expect(SampleKey(bytes: ff).jsonLiteral == "\"\\udcffa\"")
        #expect(SampleKey(bytes: dirKey).jsonLiteral == "\"d\u{e9}/\\udcff\"")
        #expect(SampleKey(bytes: ff).description == "\\xffa")
        #expect(SampleKey(nfd).jsonLiteral == "\"cafe\u{301}\"")
        #expect(Array(SampleKey(nfd).jsonLiteral.utf8) == [0x22] + Array(nfd.utf8) + [0x22])

        // A key file selects these keys by their exact bytes.
        try writeBytes(ff + [0x0a] + Array(nfd.utf8) + [0x0a], to: dir.path + "/keys.txt")
        let keys = try SplitEditor.readKeyFile(dir.path + "/keys.txt")
        #expect(keys == [SampleKey(bytes: ff), SampleKey(nfd)])
        let r = try SplitEditor.assign(index: index, split: "pick", selection: .keys(keys, source: "keys.txt"))
        #expect(r.map(\.total) == [2])
        #expect(try splitKeys(index, "pick") == [SampleKey(bytes: ff), SampleKey(nfd)])
    }
}

@Suite("An index from a newer ShardStore")
struct FutureSchemaTests {
    @Test("readers, ingest and editors refuse it with a clear message and change nothing")
    func newerSchema() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/s.tar", [("k.jpg", [1])])
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir.path + "/s.tar"])
        do {
            let db = try Database(path: index, mode: .readWrite)
            try db.execute(
                "PRAGMA user_version = 999; INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, 'future', '2099-01-01T00:00:00Z');"
            )
            db.close()
        }
        let before = try readBytes(index)
        let known = IndexFile.currentSchemaVersion
        #expect(known >= 1)
        let message =
            "\(index) was written by a newer ShardStore (schema 999; this build knows up to \(known)); upgrade shardstore to read it"

        let reader = try #require(caught { _ = try IndexReader(path: index) })
        #expect(reader as? SchemaError == .newerSchema(path: index, found: 999, known: known))
        #expect(String(describing: reader) == message)
        let dataset = try #require(caught { _ = try Dataset(index: index) })
        #expect(String(describing: dataset) == message)

        try writeShard(dir.path + "/t.tar", [("t.jpg", [2])])
        let ingest = try #require(
            caught { _ = try Ingest.run(index: index, shards: [dir.path + "/s.tar", dir.path + "/t.tar"]) })
        #expect(String(describing: ingest) == message)
        let meta = try #require(caught { try MetadataEditor.set(index: index, key: "k", value: "1") })
        #expect(String(describing: meta) == message)
        #expect(try readBytes(index) == before)
        #expect(try listing(dir.path) == ["index.sqlite", "index.sqlite-locations", "s.tar", "t.tar"])
    }
}

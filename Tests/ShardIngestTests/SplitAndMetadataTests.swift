import Foundation
import ShardStore
import ShardTestSupport
import Testing

@Suite("Splits via SplitEditor.assign")
struct SplitTests {
    /// 100 one-member samples s000..s099 over two shards, ingested into `names` fresh indexes.
    func hundred(_ dir: String, indexes names: [String]) throws {
        try writeShard(dir + "/p0.tar", (0..<60).map { (String(format: "s%03d.bin", $0), [UInt8($0)]) })
        try writeShard(dir + "/p1.tar", (60..<100).map { (String(format: "s%03d.bin", $0), [UInt8($0)]) })
        for name in names {
            let r = try Ingest.run(index: dir + "/" + name, shards: [dir + "/p0.tar", dir + "/p1.tar"])
            #expect(r.totalSamples == 100)
        }
    }

    func assignment(_ index: String) throws -> [String] {
        try keysAndSplits(index).map { "\($0.0)=\($0.1 ?? "-")" }
    }

    @Test("ratios: 80/10/10 of 100, deterministic per seed, dense positions in global order, disjoint")
    func ratios() throws {
        let dir = try TemporaryDirectory()
        try hundred(dir.path, indexes: ["one.sqlite", "two.sqlite", "three.sqlite"])
        let ratios = try SplitRatios(parsing: "train=0.8,val=0.1,test=0.1")
        var results: [[IndexWriter.SplitAssignment]] = []
        for (name, seed) in [("one.sqlite", 42 as UInt64), ("two.sqlite", 42), ("three.sqlite", 43)] {
            results.append(
                try SplitEditor.assign(index: dir.path + "/" + name, split: nil, selection: .ratios(ratios, seed: seed))
            )
        }
        for r in results {
            #expect(
                describe(r) == [
                    assigned("train", added: 80, unchanged: 0, movedFrom: [:], total: 80),
                    assigned("val", added: 10, unchanged: 0, movedFrom: [:], total: 10),
                    assigned("test", added: 10, unchanged: 0, movedFrom: [:], total: 10),
                ])
        }
        let one = try assignment(dir.path + "/one.sqlite")
        #expect(one == (try assignment(dir.path + "/two.sqlite")))
        #expect(one != (try assignment(dir.path + "/three.sqlite")))
        #expect(one.filter { $0.hasSuffix("=-") }.isEmpty)

        let index = dir.path + "/one.sqlite"
        var all: [SampleKey] = []
        for (split, count) in [("train", 80), ("val", 10), ("test", 10)] {
            let ds = try Dataset(index: index, split: split)
            #expect(ds.count == count)
            let globals = try (0..<ds.count).map { try ds.globalIndex(at: $0) }
            #expect(globals == globals.sorted())
            #expect(Set(globals).count == count)
            for p in 0..<ds.count {
                let s = try ds[p]
                #expect(try IndexReader(path: index).sample(at: s.index).split == split)
                #expect(s.members == ["bin": [UInt8(Int(String(s.key.description.dropFirst()))!)]])
            }
            all += try (0..<ds.count).map { try ds.key(at: $0) }
            let error = try #require(caught { _ = try ds[count] })
            #expect(error as? IndexError == .indexOutOfRange(index: count, count: count, split: split))
            #expect(
                String(describing: error)
                    == "index \(count) is out of range: split '\(split)' has \(count) samples (valid: 0 to \(count - 1))"
            )
        }
        #expect(Set(all).count == 100)
        #expect(try IndexReader(path: index).summary().unassigned == 0)

        // The same seed again on the same index rebuilds the same assignment.
        let again = try SplitEditor.assign(index: index, split: nil, selection: .ratios(ratios, seed: 42))
        #expect(again.map(\.total) == [80, 10, 10])
        #expect(try assignment(index) == one)
    }

    @Test("ratios leave samples of other splits alone")
    func ratiosSkipOtherSplits() throws {
        let dir = try TemporaryDirectory()
        try hundred(dir.path, indexes: ["i.sqlite"])
        let index = dir.path + "/i.sqlite"
        let held = (0..<10).map { SampleKey(String(format: "s%03d", $0 * 10)) }
        _ = try SplitEditor.assign(index: index, split: "holdout", selection: .keys(held, source: "list"))
        let r = try SplitEditor.assign(
            index: index, split: nil, selection: .ratios(try SplitRatios(parsing: "a=0.5,b=0.5"), seed: 7))
        #expect(r.map(\.total) == [45, 45])
        #expect(r.map(\.movedFrom) == [[:], [:]])
        #expect(try splitKeys(index, "holdout") == held)
    }

    @Test("by shards, then by keys: a sample is in one split at most and moves, reporting where from")
    func moves() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/a.tar", [("a0.jpg", [0]), ("a1.jpg", [1]), ("a2.jpg", [2])])
        try writeShard(dir.path + "/b.tar", [("b0.jpg", [3]), ("b1.jpg", [4])])
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir.path + "/a.tar", dir.path + "/b.tar"])

        let t = try SplitEditor.assign(index: index, split: "train", selection: .shards("*.tar"))
        #expect(describe(t) == [assigned("train", added: 5, unchanged: 0, movedFrom: [:], total: 5)])
        let v = try SplitEditor.assign(index: index, split: "val", selection: .shards("b.tar"))
        #expect(describe(v) == [assigned("val", added: 2, unchanged: 0, movedFrom: ["train": 2], total: 2)])
        let v2 = try SplitEditor.assign(index: index, split: "val", selection: .shards(dir.path + "/{a,b}.tar"))
        #expect(describe(v2) == [assigned("val", added: 3, unchanged: 2, movedFrom: ["train": 3], total: 5)])
        #expect(try Dataset(index: index, split: "train").count == 0)
        let k = try SplitEditor.assign(
            index: index, split: "test", selection: .keys([SampleKey("b1"), SampleKey("a1")], source: "keys.txt"))
        #expect(describe(k) == [assigned("test", added: 2, unchanged: 0, movedFrom: ["val": 2], total: 2)])
        #expect(try splitKeys(index, "val") == ["a0", "a2", "b0"].map { SampleKey($0) })
        #expect(try splitKeys(index, "test") == ["a1", "b1"].map { SampleKey($0) })
        #expect(
            try keysAndSplits(index).map { "\($0.0)=\($0.1 ?? "-")" } == [
                "a0=val", "a1=test", "a2=val", "b0=val", "b1=test",
            ])
        let summary = try IndexReader(path: index).summary()
        #expect(summary.splits.map { "\($0.name):\($0.count)" } == ["test:2", "train:0", "val:3"])
        #expect(summary.unassigned == 0)
        #expect(try Dataset(index: index, split: "test")[1].members == ["jpg": [4]])

        let deleted = try SplitEditor.delete(index: index, split: "test")
        #expect(deleted == 2)
        #expect(try keysAndSplits(index).filter { $0.1 == nil }.map(\.0) == ["a1", "b1"])
    }

    @Test("a key file naming a missing key: exact error, index unchanged")
    func missingKey() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/a.tar", [("a0.jpg", [0]), ("a1.jpg", [1])])
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir.path + "/a.tar"])
        let keyFile = dir.path + "/keys.txt"
        try writeBytes(Array("a0\nzz\r\n\na1\n".utf8), to: keyFile)
        let keys = try SplitEditor.readKeyFile(keyFile)
        #expect(keys == [SampleKey("a0"), SampleKey("zz"), SampleKey("a1")])
        let before = try readBytes(index)
        let error = try #require(
            caught { _ = try SplitEditor.assign(index: index, split: "val", selection: .keys(keys, source: keyFile)) })
        #expect(error is SplitSelectionError)
        #expect(
            String(describing: error)
                == "1 of the 3 keys in \(keyFile) are not in the index ('zz'); fix the list and run the command again")
        #expect(try readBytes(index) == before)
        #expect(try IndexReader(path: index).splits() == [])
    }

    @Test("a shard pattern that matches no indexed shard")
    func noShardMatches() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/a.tar", [("a0.jpg", [0])])
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir.path + "/a.tar"])
        let before = try readBytes(index)
        let error = try #require(
            caught { _ = try SplitEditor.assign(index: index, split: "val", selection: .shards("b*.tar")) })
        #expect(
            String(describing: error)
                == "no indexed shard matches 'b*.tar'; the pattern is matched against each shard's stored path, full path and file name (the index has 1 shard: 'a.tar')"
        )
        #expect(try readBytes(index) == before)
    }

    @Test("editing a missing index fails and creates nothing")
    func missingIndex() throws {
        let dir = try TemporaryDirectory()
        let index = dir.path + "/index.sqlite"
        let error = try #require(
            caught { _ = try SplitEditor.assign(index: index, split: "x", selection: .shards("*")) })
        #expect(error as? IndexError == .indexNotFound(path: index))
        #expect(
            String(describing: error)
                == "index '\(index)' does not exist; create it with `shardstore ingest \(index) SHARD...`")
        let metaError = try #require(caught { try MetadataEditor.set(index: index, key: "k", value: "v") })
        #expect(metaError as? IndexError == .indexNotFound(path: index))
        #expect(try listing(dir.path) == [])
    }
}

@Suite("Metadata via MetadataEditor")
struct MetadataTests {
    func makeIndex(_ dir: String) throws -> String {
        try writeShard(dir + "/a.tar", [("a0.jpg", [0])])
        let index = dir + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir + "/a.tar"])
        return index
    }

    @Test("JSON values are stored minified, other text as a JSON string, asString forces a string")
    func values() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir.path)
        #expect(try MetadataEditor.set(index: index, key: "license", value: "CC-BY 4.0") == "\"CC-BY 4.0\"")
        #expect(try MetadataEditor.set(index: index, key: "n", value: "42") == "42")
        #expect(try MetadataEditor.set(index: index, key: "s", value: "42", asString: true) == "\"42\"")
        #expect(
            try MetadataEditor.set(index: index, key: "card", value: "{\"a\": [1, 2], \"b\": null}")
                == "{\"a\":[1,2],\"b\":null}")
        #expect(try MetadataEditor.set(index: index, key: "quote", value: "say \"hi\"\n") == "\"say \\\"hi\\\"\\n\"")
        #expect(try MetadataEditor.set(index: index, key: "t", value: "true", asString: true) == "\"true\"")
        #expect(try MetadataEditor.set(index: index, key: "n", value: "[\"replaced\"]") == "[\"replaced\"]")
        let reader = try IndexReader(path: index)
        #expect(try reader.metadata("license") == "\"CC-BY 4.0\"")
        #expect(try reader.metadata("s") == "\"42\"")
        let all = try reader.metadata()
        #expect(
            all.map(\.key) == [
                "card", "license", "n", "quote", "s", "shardstore.content_id", "shardstore.version", "t",
            ])
        #expect(
            all.map(\.value) == [
                "{\"a\":[1,2],\"b\":null}", "\"CC-BY 4.0\"", "[\"replaced\"]", "\"say \\\"hi\\\"\\n\"", "\"42\"",
                try reader.metadata("shardstore.content_id"), JSON.quote(ShardStoreVersion.string), "\"true\"",
            ])
        let id = try reader.metadata("shardstore.content_id")
        #expect(id.count == 34 && id.hasPrefix("\"") && id.dropFirst().dropLast().allSatisfy(\.isHexDigit), "\(id)")
    }

    @Test("the reserved shardstore. prefix and the empty key are refused; the index is unchanged")
    func refused() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir.path)
        let before = try readBytes(index)
        let error = try #require(
            caught { try MetadataEditor.set(index: index, key: "shardstore.version", value: "\"9\"") })
        #expect(
            error as? IndexError
                == .invalidArgument(
                    "metadata keys starting with 'shardstore.' are written by ShardStore itself; choose another key"))
        #expect(
            String(describing: error)
                == "metadata keys starting with 'shardstore.' are written by ShardStore itself; choose another key")
        let empty = try #require(caught { try MetadataEditor.set(index: index, key: "", value: "1") })
        #expect(empty as? IndexError == .invalidArgument("a metadata key must not be empty"))
        #expect(try readBytes(index) == before)
        #expect(try IndexReader(path: index).metadata("shardstore.version") == JSON.quote(ShardStoreVersion.string))
    }

    @Test("deleting: a set key goes, an unknown key is an error")
    func delete() throws {
        let dir = try TemporaryDirectory()
        let index = try makeIndex(dir.path)
        try MetadataEditor.set(index: index, key: "k", value: "1")
        try MetadataEditor.delete(index: index, key: "k")
        #expect(try IndexReader(path: index).metadata().map(\.key) == ["shardstore.content_id", "shardstore.version"])
        let before = try readBytes(index)
        let error = try #require(caught { try MetadataEditor.delete(index: index, key: "k") })
        #expect(error as? IndexError == .unknownMetadataKey("k"))
        #expect(String(describing: error) == "no metadata entry 'k'; `shardstore meta INDEX list` shows the entries")
        #expect(try readBytes(index) == before)
        let readError = try #require(caught { _ = try IndexReader(path: index).metadata("k") })
        #expect(readError as? IndexError == .unknownMetadataKey("k"))
    }
}

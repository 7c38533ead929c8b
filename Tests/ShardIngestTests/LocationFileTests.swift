import Dispatch
import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("The location file beside the index")
struct LocationFileTests {
    /// Every member of every sample, read through `ds`, by position.
    func contents(_ ds: Dataset) throws -> [[String: [UInt8]]] {
        try (0..<ds.count).map { try ds[$0].members }
    }

    @Test("ingest writes it; pread reads through it by default; the records hold every member in archive order")
    func writtenAtIngest() throws {
        let f = try StrategyFixture(shards: 3, perShard: 5)
        let path = f.index + "-locations"
        #expect(FileManager.default.fileExists(atPath: path))
        let pread = try Dataset(index: f.index, strategy: .pread)
        #expect(pread.lookup == .file(path: path))
        let table = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .table))
        #expect(try contents(pread) == contents(table))
        for p in 0..<pread.count {
            #expect(try pread.key(at: p) == table.key(at: p))
            #expect(try pread[p].extensions == table[p].extensions)
        }
        // The split maps positions to global indexes; storage order is position order.
        let val = try Dataset(index: f.index, split: "val", strategy: .pread)
        #expect(val.lookup == .file(path: path))
        #expect(val.storageOrder() == Array(0..<val.count))
        let expected = try f.expected(split: "val", exts: nil)
        #expect(try (0..<val.count).map { try val[$0].key } == expected.map(\.key))

        // A second ingest of the same shards changes nothing and keeps the file.
        let before = try readBytes(path)
        let again = try Ingest.run(index: f.index, shards: (0..<3).map { f.directory.path + "/shard-\($0).tar" })
        #expect(again.locationFile?.path == path)
        #expect(again.locationFile?.bytes == Int64(before.count))
        #expect(try readBytes(path) == before)
    }

    @Test(
        "the slot size is estimated from 4096 evenly spread samples: records it does not fit go to the overflow area, and every byte still comes back"
    )
    func estimatedSlotSize() throws {
        let dir = try TemporaryDirectory()
        // 8192 samples: every even one (those the estimate probes) has a short key, every odd one
        // a 300-byte key, so half of the records outgrow the slot chosen.
        var files: [(String, [UInt8])] = []
        var keys: [String] = []
        for n in 0..<8192 {
            let key =
                n % 2 == 0 ? String(format: "%05d", n) : String(format: "%05d-", n) + String(repeating: "x", count: 294)
            keys.append(key)
            files.append(("\(key).cls", Array(String(n).utf8)))
        }
        try writeShard(dir.path + "/s.tar", files, format: .pax)
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir.path + "/s.tar"])
        let ds = try Dataset(index: index, strategy: .pread, options: Dataset.Options(lookup: .file))
        #expect(ds.lookup == .file(path: index + "-locations"))
        // Slots sized for the short records (48 bytes) and the long ones in the overflow area:
        // about 1.77 MB, where slots sized for the long records (336 bytes) would take 2.75 MB.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: index + "-locations")[.size] as? Int)
        #expect(size > 1_700_000 && size < 1_850_000, "\(size) bytes")
        for n in 0..<8192 {
            let sample = try ds[n]
            #expect(sample.key == SampleKey(keys[n]))
            #expect(sample["cls"] == Array(String(n).utf8))
            #expect(try ds.key(at: n) == SampleKey(keys[n]))
        }
    }

    @Test("shard ids far apart (numbered through a map, not an array) read back as the index says")
    func sparseShardIDs() throws {
        let f = try StrategyFixture(shards: 3, perShard: 5)
        let before = try contents(Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .table)))
        // Ids 0, 1, 2 become 7000, 5000, 9000: the order of shards by id changes with them.
        let db = try Database(path: f.index, mode: .readWrite)
        try db.execute("PRAGMA foreign_keys = OFF")
        for (old, new) in [(0, 7000), (1, 5000), (2, 9000)] {
            try db.execute(
                "UPDATE shards SET id = \(new) WHERE id = \(old); UPDATE members SET shard_id = \(new) WHERE shard_id = \(old); UPDATE samples SET shard_id = \(new) WHERE shard_id = \(old)"
            )
        }
        try db.execute(
            "UPDATE metadata SET value = '\"0123456789abcdef0123456789abcdef\"' WHERE key = 'shardstore.content_id'")
        db.close()
        try FileManager.default.removeItem(atPath: f.index + "-locations")
        let file = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .file))
        #expect(file.lookup == .file(path: f.index + "-locations"))
        let table = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .table))
        #expect(try contents(file) == contents(table))
        #expect(try contents(file) == before)
    }

    @Test("an ingest that adds samples replaces it; an old file put back is detected and written again at open")
    func staleFile() throws {
        let f = try StrategyFixture(shards: 2, perShard: 4)
        let path = f.index + "-locations"
        let old = try readBytes(path)
        try writeShard(f.directory.path + "/extra.tar", [("x1.jpg", [9, 9]), ("x1.cls", Array("7".utf8))])
        let report = try Ingest.run(
            index: f.index,
            shards: [
                f.directory.path + "/shard-0.tar", f.directory.path + "/shard-1.tar",
                f.directory.path + "/extra.tar",
            ])
        #expect(report.locationFile?.path == path)
        let fresh = try readBytes(path)
        #expect(fresh != old)

        try writeBytes(old, to: path)
        let ds = try Dataset(index: f.index, strategy: .pread)
        #expect(ds.lookup == .file(path: path))
        #expect(ds.count == 9)
        #expect(try ds[8].members == ["jpg": [9, 9], "cls": Array("7".utf8)])
        #expect(try readBytes(path) == fresh)

        // Deleted: written again at open.
        #expect(unlink(path) == 0)
        let reopened = try Dataset(index: f.index, strategy: .mmap, options: Dataset.Options(lookup: .file))
        #expect(try reopened[8].key == SampleKey("x1"))
        #expect(try readBytes(path) == fresh)
    }

    @Test("datasets opened on 4 threads at once with the file missing all read through one good file")
    func concurrentRewrite() throws {
        let f = try StrategyFixture(shards: 2, perShard: 5)
        let path = f.index + "-locations"
        let good = try readBytes(path)
        #expect(unlink(path) == 0)
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let ds = try Dataset(index: f.index, strategy: .pread)
                guard ds.lookup == .file(path: path) else { throw IndexError.invalidArgument("lookup \(ds.lookup)") }
                for p in 0..<ds.count where try ds[p].key != f.keys[p] {
                    throw IndexError.invalidArgument("key at \(p)")
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(try readBytes(path) == good)
        #expect(try listing(f.directory.path).filter { $0.hasPrefix(".") } == [])
    }

    @Test("a file that cannot be written: auto falls back to SQL lookups, --lookup file says why")
    func unwritable() throws {
        let f = try StrategyFixture(shards: 1, perShard: 3)
        let path = f.index + "-locations"
        #expect(unlink(path) == 0)
        // A non-empty directory in its place: the new file cannot be renamed over it.
        try FileManager.default.createDirectory(atPath: path + "/in-the-way", withIntermediateDirectories: true)
        let ds = try Dataset(index: f.index, strategy: .pread)
        #expect(ds.lookup == .statements)
        #expect(try ds[2].key == f.keys[2])
        let error = try #require(
            caught { _ = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .file)) })
        // The temporary's name is random: `.NAME.shardstore-partial-PID-HEX` beside the file.
        let message = String(describing: error)
        let temporary = f.directory.path + "/" + AtomicFile.partialPrefix(for: path) + "\(getpid())-"
        #expect(
            message.hasPrefix(
                "the location file cannot be used: cannot write the location file: cannot rename '\(temporary)"),
            "\(message)")
        #expect(message.hasSuffix("' to '\(path)': Is a directory (errno 21)"), "\(message)")
        // No temporary file is left behind.
        #expect(try listing(f.directory.path).filter { $0.hasPrefix(".") } == [])
    }

    @Test("an index from before location files: SQL lookups until an ingest adds its content id")
    func indexWithoutContentID() throws {
        let f = try StrategyFixture(shards: 1, perShard: 3)
        let path = f.index + "-locations"
        #expect(unlink(path) == 0)
        do {
            let db = try Database(path: f.index, mode: .readWrite)
            try db.execute("DELETE FROM metadata WHERE key = 'shardstore.content_id'")
            db.close()
        }
        let ds = try Dataset(index: f.index, strategy: .pread)
        #expect(ds.lookup == .statements)
        let error = try #require(
            caught { _ = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .file)) })
        #expect(
            String(describing: error)
                == "the location file cannot be used: the index was written before location files existed; run `shardstore ingest` on it again (unchanged shards are not re-read) to add one"
        )
        #expect(!FileManager.default.fileExists(atPath: path))
        let report = try Ingest.run(index: f.index, shards: [f.directory.path + "/shard-0.tar"])
        #expect(report.unchanged.count == 1)
        #expect(report.locationFile?.path == path)
        #expect(try Dataset(index: f.index, strategy: .pread).lookup == .file(path: path))
    }

    @Test("a damaged record is read from the index and the file unlinked; a file of the wrong size is rewritten")
    func damaged() throws {
        let f = try StrategyFixture(shards: 1, perShard: 3)
        let path = f.index + "-locations"
        let good = try readBytes(path)
        // Slots follow the 128-byte header; the slot size is at byte 80. Sample 1's record claims
        // 16 million members, more than its slot holds (and its checksum no longer matches).
        let slot = Int(good[80]) | Int(good[81]) << 8
        var bad = good
        for i in 4..<7 { bad[128 + slot + i] = 0xff }
        try writeBytes(bad, to: path)
        let ds = try Dataset(index: f.index, strategy: .pread)
        #expect(ds.lookup == .file(path: path))
        #expect(try ds[0].key == f.keys[0])
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try ds[1].key == f.keys[1])
        #expect(try ds[1].members == f.members[f.keys[1]])
        #expect(try ds.key(at: 1) == f.keys[1])
        #expect(try ds[2].members == f.members[f.keys[2]])
        // The damaged file is gone; the next open writes it again.
        #expect(!FileManager.default.fileExists(atPath: path))
        let reopened = try Dataset(index: f.index, strategy: .pread)
        #expect(reopened.lookup == .file(path: path))
        #expect(try readBytes(path) == good)

        try writeBytes(Array(good.dropLast()), to: path)
        let rewritten = try Dataset(index: f.index, strategy: .pread)
        #expect(rewritten.lookup == .file(path: path))
        #expect(try rewritten[1].key == f.keys[1])
        #expect(try readBytes(path) == good)
    }

    @Test("records longer than the slot go to the overflow area and read back the same")
    func overflowRecords() throws {
        let dir = try TemporaryDirectory()
        var files: [(String, [UInt8])] = []
        for i in 0..<150 { files.append(("k\(i).bin", pattern(i * 7, seed: i))) }
        let wide = "a/much/longer/key/for/one/sample"
        for e in 0..<40 { files.append(("\(wide).e\(e)", pattern(e, seed: 1000 + e))) }
        try writeShard(dir.path + "/s.tar", files, format: .pax)
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [dir.path + "/s.tar"])
        let bytes = try readBytes(index + "-locations")
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let (slot, overflowStart, tailStart) = (u64(80), u64(96), u64(104))
        #expect(slot < 12 + 40 * 24 + wide.utf8.count)
        #expect(tailStart - overflowStart == 12 + 40 * 24 + wide.utf8.count)

        let file = try Dataset(index: index, strategy: .pread)
        let table = try Dataset(index: index, strategy: .pread, options: Dataset.Options(lookup: .table))
        #expect(file.lookup == .file(path: index + "-locations"))
        #expect(file.count == 151)
        #expect(try contents(file) == contents(table))
        #expect(try file[150].key == SampleKey(wide))
        #expect(try file[150].extensions == (0..<40).map { "e\($0)" })
        #expect(try file.key(at: 150) == SampleKey(wide))
    }

    @Test("the memory strategy refuses SQL or file lookups, since it preloads into the table")
    func memoryNeedsTable() throws {
        let f = try StrategyFixture(shards: 1, perShard: 2)
        for lookup in [Dataset.LookupMode.file, .statements] {
            let error = try #require(
                caught { _ = try Dataset(index: f.index, strategy: .memory, options: Dataset.Options(lookup: lookup)) })
            #expect(
                String(describing: error)
                    == "the memory strategy needs the in-memory location table; use lookup 'auto' or 'table', or another strategy"
            )
            #expect(
                (error as? DatasetError)?.message(.commandLine)
                    == "the memory strategy needs the in-memory location table; use --lookup auto or table, or another strategy"
            )
        }
    }
}

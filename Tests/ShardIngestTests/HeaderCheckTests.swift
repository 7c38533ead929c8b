import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// Two ustar shards of the same size and modification time, ingested, then (optionally) swapped:
/// the size and time checks cannot tell, only the members' own headers can.
struct SwappedShards {
    let directory: TemporaryDirectory
    let index: String
    let a: String
    let b: String

    /// The first sample of a.tar: `a000.jpg` (1024 bytes of `A`, data at 512), `a000.cls`.
    init(swap: Bool) throws {
        directory = try TemporaryDirectory()
        a = try Paths.real(directory.path) + "/a.tar"
        b = try Paths.real(directory.path) + "/b.tar"
        try writeShard(
            a,
            [
                ("a000.jpg", [UInt8](repeating: 0x41, count: 1024)), ("a000.cls", [0x31]),
                ("a001.jpg", pattern(700, seed: 2)), ("a001.cls", [0x32]),
            ])
        try writeShard(
            b,
            [
                ("b000.jpg", [UInt8](repeating: 0x42, count: 1024)), ("b000.cls", [0x33]),
                ("b001.jpg", pattern(700, seed: 4)), ("b001.cls", [0x34]),
            ])
        try setModificationTime(a, seconds: 1_700_000_000, nanoseconds: 5)
        try setModificationTime(b, seconds: 1_700_000_000, nanoseconds: 5)
        index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [a, b])
        if swap {
            // Renames keep each file's size and modification time.
            #expect(rename(a, directory.path + "/t.tar") == 0)
            #expect(rename(b, a) == 0)
            #expect(rename(directory.path + "/t.tar", b) == 0)
        }
    }

    /// The error reading the first sample of `shard` (a.tar or b.tar) after the swap.
    func swapError(_ shard: String) -> String {
        let (found, expected) = shard == a ? ("b000", "a000") : ("a000", "b000")
        return
            "shard '\(shard)' at byte offset 0: the header there names '\(found).jpg', the index expects '\(expected).jpg' (key '\(expected)', .jpg); the shard changed since ingest or the index is damaged: run `shardstore ingest` again into a new index"
    }

    /// Runs `sql` on the index, then removes the location file so it is written again from the
    /// damaged index (it is a cache of the index).
    func damage(_ sql: String) throws {
        let db = try Database(path: index, mode: .readWrite)
        try db.execute(sql)
        db.close()
        _ = unlink(index + "-locations")
    }
}

/// Every (strategy, lookup) a dataset can read with (memory needs the table).
let strategyLookups: [(LoadingStrategy, Dataset.LookupMode)] = [
    (.memory, .table), (.mmap, .table), (.mmap, .file), (.mmap, .statements), (.pread, .table), (.pread, .file),
    (.pread, .statements),
]

/// The description of the error thrown by opening the dataset and reading sample 0 (with
/// `withSample`, `forEachSample` and `sample(forKey:)`), or "no error".
func readErrors(
    _ index: String, _ strategy: LoadingStrategy, _ lookup: Dataset.LookupMode, verifies: Bool = true
) -> [String] {
    var out: [String] = []
    let options = Dataset.Options(lookup: lookup, verifiesHeaders: verifies)
    for read in 0..<3 {
        do {
            let ds = try Dataset(index: index, strategy: strategy, options: options)
            switch read {
            case 0: _ = try ds.sample(at: 0)
            case 1: try ds.forEachSample { _ in }
            default: _ = try ds.sample(forKey: SampleKey("a000"))
            }
            out.append("no error")
        } catch {
            out.append(String(describing: error))
        }
    }
    return out
}

@Suite("Every read checks the member's own tar header; index rows are validated when loaded")
struct HeaderCheckTests {
    @Test("two same-size shards swapped keeping their times: refused by every strategy and lookup")
    func swappedShards() throws {
        let f = try SwappedShards(swap: true)
        for (strategy, lookup) in strategyLookups {
            let errors = readErrors(f.index, strategy, lookup)
            if strategy == .memory {
                // The preload reads both shards in parallel: either may be refused first.
                for e in errors { #expect(e == f.swapError(f.a) || e == f.swapError(f.b), "\(strategy) \(lookup)") }
            } else {
                #expect(errors == [String](repeating: f.swapError(f.a), count: 3), "\(strategy) \(lookup)")
            }
            // The check is what refuses them: without it the swapped bytes come back.
            let ds = try Dataset(
                index: f.index, strategy: strategy, options: Dataset.Options(lookup: lookup, verifiesHeaders: false))
            #expect(try ds.sample(at: 0)["jpg"] == [UInt8](repeating: 0x42, count: 1024), "\(strategy) \(lookup)")
        }
        // The member reader of `shardstore get`.
        let reader = try IndexReader(path: f.index)
        let record = try reader.sample(at: 0)
        let error = try #require(
            caught { _ = try ShardReader(index: reader).bytes(of: record.member("jpg")!, key: record.key) })
        #expect(error is MemberHeaderError)
        #expect(String(describing: error) == f.swapError(f.a))
    }

    @Test("the same shards, not swapped: every strategy and lookup reads the right bytes")
    func unswapped() throws {
        let f = try SwappedShards(swap: false)
        for (strategy, lookup) in strategyLookups {
            #expect(
                readErrors(f.index, strategy, lookup) == ["no error", "no error", "no error"], "\(strategy) \(lookup)")
            let ds = try Dataset(index: f.index, strategy: strategy, options: Dataset.Options(lookup: lookup))
            #expect(try ds.sample(at: 0)["jpg"] == [UInt8](repeating: 0x41, count: 1024))
            #expect(try ds.sample(at: 3)["cls"] == [0x34])
        }
        let reader = try IndexReader(path: f.index)
        let record = try reader.sample(at: 1)
        #expect(
            try ShardReader(index: reader).bytes(of: record.member("jpg")!, key: record.key) == pattern(700, seed: 2))
    }

    @Test("members.data_offset moved by one block: refused with the header error by every strategy and lookup")
    func shiftedDataOffset() throws {
        let f = try SwappedShards(swap: false)
        try f.damage("UPDATE members SET data_offset = data_offset + 512 WHERE sample_id = 0 AND ext = 'jpg'")
        // The block before the new offset is the member's data: 512 bytes of 'A'.
        let expected =
            "shard '\(f.a)' at byte offset 512: no valid tar header precedes the member (checksum field not a number, computed \(0x41 * 504 + 256)) (key 'a000', .jpg); the shard changed since ingest or the index is damaged: run `shardstore ingest` again into a new index"
        for (strategy, lookup) in strategyLookups {
            #expect(
                readErrors(f.index, strategy, lookup) == [String](repeating: expected, count: 3),
                "\(strategy) \(lookup)")
        }
        let reader = try IndexReader(path: f.index)
        let record = try reader.sample(at: 0)
        let error = caught { _ = try ShardReader(index: reader).bytes(of: record.member("jpg")!, key: record.key) }
        #expect(error.map { String(describing: $0) } == expected)
    }

    @Test(
        "a negative length, an offset off the block grid, a member past the shard's end, an unknown shard: a clear error, never a trap"
    )
    func damagedRows() throws {
        let cases: [(sql: String, message: String)] = [
            (
                "UPDATE members SET length = -5 WHERE sample_id = 0 AND ext = 'jpg'",
                "(sample 0, key 'a000', .jpg): length -5 is negative"
            ),
            (
                "UPDATE members SET data_offset = 513 WHERE sample_id = 0 AND ext = 'jpg'",
                "(sample 0, key 'a000', .jpg): data_offset 513 is not a positive multiple of 512"
            ),
            (
                "UPDATE members SET header_offset = 512 WHERE sample_id = 0 AND ext = 'jpg'",
                "(sample 0, key 'a000', .jpg): header_offset 512 is not at least one block before data_offset 512"
            ),
            (
                "UPDATE members SET length = 1000000 WHERE sample_id = 0 AND ext = 'jpg'",
                "(sample 0, key 'a000', .jpg): length 1000000 from data_offset 512 ends past the shard's 6144 bytes recorded at ingest"
            ),
            (
                "UPDATE members SET shard_id = 99 WHERE sample_id = 0 AND ext = 'jpg'",
                "(sample 0, key 'a000', .jpg): shard_id 99 names a shard the index does not list"
            ),
        ]
        for c in cases {
            let f = try SwappedShards(swap: false)
            try f.damage("PRAGMA foreign_keys = OFF; " + c.sql)
            let expected =
                "index '\(f.index)' has a damaged member row \(c.message); run `shardstore ingest` again into a new index"
            for (strategy, lookup) in strategyLookups where lookup != .file {
                let errors = readErrors(f.index, strategy, lookup)
                // forEachSample and the key lookup read sample 0 too.
                #expect(errors == [String](repeating: expected, count: 3), "\(strategy) \(lookup) \(c.sql)")
            }
            let reader = try IndexReader(path: f.index)
            let record = try reader.sample(at: 0)
            let error = caught {
                _ = try ShardReader(index: reader).bytes(of: record.member("jpg")!, key: record.key, sample: record.id)
            }
            #expect(error.map { String(describing: $0) } == expected, "\(c.sql)")
        }
    }

    @Test("a damaged shards.member_count (Int64.max) does not trap the table estimate: reads go on")
    func hugeMemberCount() throws {
        let f = try SwappedShards(swap: false)
        try f.damage("UPDATE shards SET member_count = 9223372036854775807")
        for (strategy, lookup) in strategyLookups {
            #expect(
                readErrors(f.index, strategy, lookup) == ["no error", "no error", "no error"], "\(strategy) \(lookup)")
        }
    }

    @Test("pax long names, names outside ASCII, GNU long names and upper-case extensions read without a false alarm")
    func longNames() throws {
        let dir = try TemporaryDirectory()
        let long = String(repeating: "folder-name/", count: 12)
        var files: [(String, [UInt8])] = []
        for i in 0..<6 {
            files.append(("\(long)sample-\(String(repeating: "x", count: 80))-\(i).jpg", pattern(300 + i, seed: i)))
            files.append(("données/échantillon-\(i).JSON", Array("{\"i\": \(i)}".utf8)))
            files.append(("short\(i).cls", [UInt8(48 + i)]))
        }
        var paths: [String] = []
        for (n, format) in [TarWriter.Format.pax, .gnu].enumerated() {
            let path = dir.path + "/s\(n).tar"
            // GNU tar cannot hold names outside ASCII in a pax record; its long names are `L` blocks.
            var tar = TarWriter(format: format)
            for (name, bytes) in files { tar.addFile("\(n)/" + name, bytes) }
            tar.finish()
            try tar.write(to: path)
            paths.append(path)
        }
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: paths)
        let expected = (0..<2).flatMap { n in
            expectedSamples(files.map { FixtureFile(name: "\(n)/" + $0.0, bytes: $0.1) })
        }
        for (strategy, lookup) in strategyLookups {
            let ds = try Dataset(index: index, strategy: strategy, options: Dataset.Options(lookup: lookup))
            #expect(try loadAll(ds) == expected, "\(strategy) \(lookup)")
            var seen = 0
            try ds.forEachSample { _ in seen += 1 }
            #expect(seen == expected.count)
        }
        let reader = try IndexReader(path: index)
        let shards = try ShardReader(index: reader)
        for i in 0..<expected.count {
            let record = try reader.sample(at: i)
            for m in record.members {
                #expect(try shards.bytes(of: m, key: record.key) == expected[i].members[m.ext])
            }
        }
    }
}

import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// A damaged second shard: what it holds and the exact message the ingest must stop with.
struct CorruptCase: Sendable, CustomTestStringConvertible {
    var name: String
    /// The bad shard's bytes; nil: the file does not exist.
    var bytes: [UInt8]?
    /// The message, with `DIR` for the temporary folder.
    var message: String
    var testDescription: String { name }

    /// A two-member ustar archive: b1.jpg (1000 bytes, header 0, data 512), b2.txt (10 bytes,
    /// header 1536, data 2048); 3584 bytes with its end marker.
    static var base: TarWriter {
        var tar = TarWriter(format: .ustar)
        tar.addFile("b1.jpg", pattern(1000, seed: 11))
        tar.addFile("b2.txt", pattern(10, seed: 12))
        tar.finish()
        return tar
    }

    /// The POSIX checksum of a header block (checksum field as spaces), computed here.
    static func checksum(_ block: ArraySlice<UInt8>) -> Int {
        block.enumerated().reduce(0) { $0 + ((148..<156).contains($1.offset) ? 0x20 : Int($1.element)) }
    }

    static let tail = "; re-fetch the shard or leave it out of the ingest"

    static var all: [CorruptCase] {
        var cases: [CorruptCase] = []
        let base = Self.base

        var t = base
        t.truncate(to: 2050)
        cases.append(
            CorruptCase(
                name: "truncated inside a member", bytes: t.bytes,
                message:
                    "shard 'bad.tar': truncated member at offset 1536: its data ends at 2058 but the file ends at 2050"
                    + tail))

        t = base
        t.truncate(to: 1000)
        cases.append(
            CorruptCase(
                name: "truncated inside the first member", bytes: t.bytes,
                message:
                    "shard 'bad.tar': truncated member at offset 0: its data ends at 1512 but the file ends at 1000"
                    + tail))

        t = base
        t.truncate(to: 1636)
        cases.append(
            CorruptCase(
                name: "truncated inside a header", bytes: t.bytes,
                message: "shard 'bad.tar': truncated tar header at offset 1536 (file ends at 1636)" + tail))

        t = base
        let stored = checksum(t.bytes[1536..<2048])
        t.corruptChecksum(ofBlockAt: 1536)
        let computed = checksum(t.bytes[1536..<2048])
        cases.append(
            CorruptCase(
                name: "bad header checksum at a later offset", bytes: t.bytes,
                message:
                    "shard 'bad.tar': tar header checksum mismatch at offset 1536 (stored \(stored), computed \(computed))"
                    + tail))

        cases.append(
            CorruptCase(
                name: "not a tar", bytes: pattern(3000, seed: 9),
                message: "shard 'bad.tar': not a tar archive: no valid tar header at offset 0" + tail))

        cases.append(
            CorruptCase(
                name: "empty file", bytes: [],
                message: "shard 'bad.tar': empty file (0 bytes), not a tar archive" + tail))

        cases.append(
            CorruptCase(
                name: "missing shard", bytes: nil, message: "shard 'DIR/bad.tar' does not exist; check the path"))

        // Compression magic (the name says .tar: the first bytes decide) followed by bytes that
        // are no valid stream: refused at the compressed offset where the decompressor gave up.
        for (magic, name, at, reason) in [
            ([0x1f, 0x8b, 0x08, 0x00] as [UInt8], "gzip", 11, "invalid block type"),
            (Array("BZh91AY&SY".utf8), "bzip2", 18, "bad block data or CRC mismatch"),
            ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], "xz", 12, "compressed data is corrupt (or a check does not match)"),
            ([0x28, 0xb5, 0x2f, 0xfd], "zstd", 0, "Dictionary mismatch"),
        ] {
            cases.append(
                CorruptCase(
                    name: "\(name) magic", bytes: magic + pattern(700, seed: 3),
                    message:
                        "shard 'bad.tar': \(name) data is corrupt at compressed byte \(at) (\(reason)); the file is damaged: fetch or compress it again"
                ))
        }

        var u = TarWriter(format: .ustar)
        u.addFile("b1.jpg", pattern(1000, seed: 11))
        u.addFile(name: Array("b2.".utf8) + [0xff], data: pattern(10, seed: 12))
        u.finish()
        cases.append(
            CorruptCase(
                name: "extension not UTF-8", bytes: u.bytes,
                message:
                    "shard 'bad.tar': the member at offset 1536 ('b2.\\xff') has an extension that is not valid UTF-8; rename it in the tar, or leave the shard out of the ingest"
            ))
        return cases
    }
}

@Suite("Corrupt input: a clear error and an untouched index")
struct CorruptInputTests {
    /// good.tar (a good new shard) and bad.tar in `dir`.
    func makeShards(_ dir: String, _ c: CorruptCase) throws {
        try writeShard(dir + "/good.tar", [("g1.jpg", pattern(100, seed: 1)), ("g2.jpg", pattern(100, seed: 2))])
        if let bytes = c.bytes { try writeBytes(bytes, to: dir + "/bad.tar") }
    }

    @Test("the damaged fixtures are what the messages assume")
    func fixtures() {
        let base = CorruptCase.base
        #expect(base.entries.map(\.headerOffset) == [0, 1536])
        #expect(base.entries.map(\.dataOffset) == [512, 2048])
        #expect(base.bytes.count == 3584)
        var t = base
        t.corruptChecksum(ofBlockAt: 1536)
        #expect(CorruptCase.checksum(t.bytes[1536..<2048]) != CorruptCase.checksum(base.bytes[1536..<2048]))
        #expect(CorruptCase.all.count == 12)
    }

    @Test("new index: the error names shard and offset; no index and no partial file", arguments: CorruptCase.all)
    func newIndex(_ c: CorruptCase) throws {
        let dir = try TemporaryDirectory()
        try makeShards(dir.path, c)
        let files = try listing(dir.path)
        let error = try #require(
            caught {
                _ = try Ingest.run(
                    index: dir.path + "/index.sqlite", shards: [dir.path + "/good.tar", dir.path + "/bad.tar"])
            })
        #expect(String(describing: error) == c.message.replacingOccurrences(of: "DIR", with: dir.path))
        #expect(try listing(dir.path) == files)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/index.sqlite"))
    }

    @Test(
        "existing index: the error names shard and offset; the index file is byte-for-byte unchanged",
        arguments: CorruptCase.all)
    func existingIndex(_ c: CorruptCase) throws {
        let dir = try TemporaryDirectory()
        try makeShards(dir.path, c)
        let index = dir.path + "/index.sqlite"
        try writeShard(dir.path + "/base.tar", [("base.jpg", [7])])
        _ = try Ingest.run(index: index, shards: [dir.path + "/base.tar"])
        try MetadataEditor.set(index: index, key: "card", value: "{\"a\": 1}")
        _ = try SplitEditor.assign(index: index, split: "train", selection: .shards("base.tar"))
        let before = try readBytes(index)
        let files = try listing(dir.path)
        for jobs in [1, 2] {
            let error = try #require(
                caught {
                    _ = try Ingest.run(
                        index: index, shards: [dir.path + "/good.tar", dir.path + "/bad.tar"],
                        options: IngestOptions(split: "val", jobs: jobs))
                })
            #expect(String(describing: error) == c.message.replacingOccurrences(of: "DIR", with: dir.path))
            #expect(try readBytes(index) == before)
            #expect(try listing(dir.path) == files)
        }
        try expectDataset(index, equals: [ExpectedSample(key: SampleKey("base"), members: ["jpg": [7]])], ordered: true)
        #expect(try IndexReader(path: index).shards().map(\.path) == ["base.tar"])
    }

    @Test("a directory given as a shard is refused before anything is written")
    func directoryAsShard() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/good.tar", [("g.jpg", [1])])
        try FileManager.default.createDirectory(atPath: dir.path + "/sub.tar", withIntermediateDirectories: false)
        let error = try #require(
            caught {
                _ = try Ingest.run(
                    index: dir.path + "/index.sqlite", shards: [dir.path + "/good.tar", dir.path + "/sub.tar"])
            })
        #expect(String(describing: error) == "cannot ingest '\(dir.path)/sub.tar' (a directory, not a tar file)")
        #expect(try listing(dir.path) == ["good.tar", "sub.tar"])
    }

    @Test("no shard named at all")
    func noShards() throws {
        let dir = try TemporaryDirectory()
        let error = try #require(caught { _ = try Ingest.run(index: dir.path + "/index.sqlite", shards: []) })
        #expect(
            String(describing: error)
                == "no shards to ingest: name .tar files, globs ('data/*.tar') or brace ranges ('train-{000000..000099}.tar')"
        )
        #expect(try listing(dir.path) == [])
    }

    @Test("a file at the index path that is not a ShardStore index is refused and left alone")
    func foreignIndexFile() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/good.tar", [("g.jpg", [1])])
        let index = dir.path + "/index.sqlite"
        let junk = Array("this is not an SQLite database, just some text that is long enough to fill a header....".utf8)
        try writeBytes(junk, to: index)
        let error = try #require(caught { _ = try Ingest.run(index: index, shards: [dir.path + "/good.tar"]) })
        #expect(
            String(describing: error)
                == "\(index) is not a ShardStore index (it has no schema_migrations table); pass the index.sqlite that `shardstore ingest` wrote"
        )
        #expect(try readBytes(index) == junk)
        #expect(try listing(dir.path) == ["good.tar", "index.sqlite"])
    }

    @Test("a partial index left by a killed ingest is removed by the next one")
    func stalePartial() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/good.tar", [("g.jpg", [1])])
        var pid: Int32 = 4_000_000
        while kill(pid, 0) == 0 || errno == EPERM { pid -= 1 }
        let stale = dir.path + "/.index.sqlite.partial-\(pid)"
        try writeBytes([1, 2, 3], to: stale)
        try writeBytes([4], to: stale + "-journal")
        let staleLocations = dir.path + "/.index.sqlite-locations.partial-\(pid)"
        try writeBytes([5], to: staleLocations)
        let report = try Ingest.run(index: dir.path + "/index.sqlite", shards: [dir.path + "/good.tar"])
        #expect(report.removedPartials == [stale])
        #expect(try listing(dir.path) == ["good.tar", "index.sqlite", "index.sqlite-locations"])
    }

    /// A gzip shard is ingested as it is, whatever its name says, and reads back byte for byte.
    @Test("a gzip shard ingests as it is and reads back", arguments: ["real.tar.gz", "real.tar"])
    func gzipShardIngests(name: String) throws {
        let dir = try TemporaryDirectory()
        let data = pattern(50)
        try writeShard(dir.path + "/plain", [("k.jpg", data)])
        let gz = try runProcess("sh", ["-c", "gzip -c plain > '\(name)' && rm plain"], currentDirectory: dir.path)
        #expect(gz.status == 0, "\(gz.stderrText)")
        let report = try Ingest.run(index: dir.path + "/index.sqlite", shards: [dir.path + "/" + name])
        #expect(report.totalSamples == 1)
        let shards = try IndexReader(path: dir.path + "/index.sqlite").shards()
        #expect(shards.map(\.compression) == ["gzip"])
        for strategy in [LoadingStrategy.memory, .mmap, .pread] {
            let dataset = try Dataset(index: dir.path + "/index.sqlite", strategy: strategy)
            #expect(try dataset.sample(at: 0).members["jpg"] == data)
        }
    }
}

import Foundation
import ShardCore
import ShardIndex
import ShardTestSupport
import Testing

/// The typed queries datasets and location files ask (`IndexReader+Dataset`,
/// `IndexReader+Locations`), on a small index written through `IndexWriter`, with exact answers.
@Suite("IndexReader: the typed queries of datasets and location files")
struct IndexReaderQueryTests {
    /// One member row as the fixture writes it.
    struct Row: Equatable, Comparable, CustomStringConvertible {
        var sample: Int64
        var ext: String
        var location: MemberLocation
        static func < (a: Row, b: Row) -> Bool { (a.sample, a.ext) < (b.sample, b.ext) }
        var description: String { "\(sample).\(ext)@\(location.shardID):\(location.dataOffset)" }
    }

    static let keys = ["k0", "k1", "dup", "dup", "ünï"]
    /// A member of `sample` in shard `shard`: its header block at `header`, its data at `data`.
    static func row(_ sample: Int64, _ ext: String, _ shard: Int64, _ header: Int64, _ data: Int64, _ length: Int64)
        -> Row
    {
        Row(
            sample: sample, ext: ext,
            location: MemberLocation(shardID: shard, headerOffset: header, dataOffset: data, length: length))
    }

    static let rows: [Row] = [
        row(0, "jpg", 0, 0, 512, 100), row(0, "cls", 0, 1024, 1536, 1), row(1, "jpg", 0, 2048, 2560, 200),
        row(2, "jpg", 1, 0, 512, 300), row(2, "json", 1, 1024, 1536, 10), row(3, "cls", 1, 2048, 2560, 2),
        row(4, "jpg", 1, 3072, 4096, 50),
    ]

    /// Two shards, five samples (two share the key `dup`), seven members, split `val` = samples
    /// 1, 3 and 4; with a content id unless `contentID` is nil.
    static func makeIndex(in dir: String, contentID: String? = "abc") throws -> IndexReader {
        let path = dir + "/index.sqlite"
        let db = try Database(path: path, mode: .readWriteCreate)
        try IndexFile.migrator.migrate(db)
        let writer = try IndexWriter(database: db)
        try db.inTransaction {
            try writer.saveShard(
                ShardRecord(
                    id: 0, path: "a.tar", size: 10240, modificationTimeNanoseconds: 1, memberCount: 3, skippedCount: 0))
            try writer.saveShard(
                ShardRecord(
                    id: 1, path: "s3://bucket/b.tar", size: 20480, modificationTimeNanoseconds: 2, memberCount: 4,
                    skippedCount: 0, etag: "\"9b2cf535f27731c974343645a3985328\"",
                    lastModified: "Wed, 21 Oct 2015 07:28:00 GMT"))
            for (id, key) in keys.enumerated() {
                try writer.insertSample(
                    id: Int64(id), key: SampleKey(key), shardID: id < 2 ? 0 : 1,
                    firstOffset: rows.first { $0.sample == Int64(id) }!.location.headerOffset)
            }
            for row in rows { try writer.insertMember(sampleID: row.sample, ext: row.ext, location: row.location) }
            _ = try writer.assign(split: "val", sampleIDs: [1, 3, 4], step: "{}")
            if let contentID { try writer.setMetadata(IndexFile.contentIDKey, json: "\"\(contentID)\"") }
            try writer.flush()
        }
        db.close()
        return try IndexReader(path: path)
    }

    @Test("counts, shard ids, extensions and selection sizes")
    func summaries() throws {
        let dir = try TemporaryDirectory()
        let reader = try Self.makeIndex(in: dir.path)
        let val = try reader.splitID("val")
        #expect(try reader.sampleRowCount() == 5)
        #expect(try reader.shardIDs() == [0, 1])
        // A local shard has no ETag; a remote one keeps what its server sent.
        let shards = try reader.shards()
        #expect(shards.map(\.etag) == [nil, "\"9b2cf535f27731c974343645a3985328\""])
        #expect(shards.map(\.lastModified) == [nil, "Wed, 21 Oct 2015 07:28:00 GMT"])
        #expect(shards.map(\.path) == ["a.tar", "s3://bucket/b.tar"])
        #expect(try reader.contentID() == "abc")
        #expect(try reader.hasMember(withExtension: "json"))
        #expect(try !reader.hasMember(withExtension: "png"))
        #expect(try reader.distinctExtensions().sorted() == ["cls", "jpg", "json"])
        #expect(try reader.selectionBytes(splitID: nil, extensions: nil) == 663)
        #expect(try reader.selectionBytes(splitID: nil, extensions: ["jpg"]) == 650)
        #expect(try reader.selectionBytes(splitID: val, extensions: nil) == 252)
        #expect(try reader.selectionBytes(splitID: val, extensions: ["cls", "json"]) == 2)
        #expect(try reader.selectionBytes(splitID: val, extensions: ["png"]) == 0)
        #expect(try reader.splitSampleIDs(splitID: val, count: 3) == [1, 3, 4])
        let changed = try #require(throws: IndexError.self) { try reader.splitSampleIDs(splitID: val, count: 4) }
        #expect(
            changed
                == .invalidArgument(
                    "the index changed while it was being read (3 samples in the split, not 4); open it again"))
        #expect(try #require(try reader.keyLengthAndMemberCount(ofSample: 4)) == (keyLength: 5, members: 1))
        #expect(try #require(try reader.keyLengthAndMemberCount(ofSample: 0)) == (keyLength: 2, members: 2))
        #expect(try reader.keyLengthAndMemberCount(ofSample: 5) == nil)
    }

    @Test("a sample's head, key, global index and member rows by position, in the dataset and in a split")
    func lookups() throws {
        let dir = try TemporaryDirectory()
        let reader = try Self.makeIndex(in: dir.path)
        let val = try reader.splitID("val")
        let head = try #require(try reader.sampleHead(atPosition: 2, splitID: nil))
        #expect(head.id == 2 && head.key == Array("dup".utf8))
        let inSplit = try #require(try reader.sampleHead(atPosition: 2, splitID: val))
        #expect(inSplit.id == 4 && inSplit.key == Array("ünï".utf8))
        #expect(try reader.sampleHead(atPosition: 5, splitID: nil) == nil)
        #expect(try reader.sampleHead(atPosition: 3, splitID: val) == nil)
        #expect(try reader.key(atPosition: 0, splitID: val) == SampleKey("k1"))
        #expect(try reader.key(atPosition: 4, splitID: nil) == SampleKey("ünï"))
        #expect(try reader.key(atPosition: -1, splitID: nil) == nil)
        #expect(try reader.globalIndex(atPosition: 1, splitID: val) == 3)
        #expect(try reader.globalIndex(atPosition: 3, splitID: val) == nil)

        func records(_ sample: Int64) -> [MemberRecord] {
            Self.rows.filter { $0.sample == sample }.sorted().map { MemberRecord(ext: $0.ext, location: $0.location) }
        }
        #expect(try reader.memberRows(ofSample: 0, extensions: nil).sorted { $0.ext < $1.ext } == records(0))
        #expect(try reader.memberRows(ofSample: 2, extensions: ["json"]) == records(2).filter { $0.ext == "json" })
        #expect(try reader.memberRows(ofSample: 2, extensions: ["png"]) == [])
        #expect(try reader.memberRows(ofSample: 9, extensions: nil) == [])
        // The same cached statement, asked again: no state left over from the last call.
        #expect(try reader.memberRows(ofSample: 0, extensions: nil).count == 2)

        #expect(try reader.positions(ofKey: SampleKey("dup"), splitID: nil) == [2, 3])
        #expect(try reader.positions(ofKey: SampleKey("dup"), splitID: val) == [1])
        #expect(try reader.positions(ofKey: SampleKey("k0"), splitID: val) == [])
        #expect(try reader.positions(ofKey: SampleKey("nope"), splitID: nil) == [])
    }

    @Test("the key and member scans, one read transaction, the small page cache")
    func scans() throws {
        let dir = try TemporaryDirectory()
        let reader = try Self.makeIndex(in: dir.path)
        func keys(_ cursor: SampleKeyCursor) throws -> [String] {
            var out: [String] = []
            while try cursor.next() {
                let key = cursor.withKeyBytes { String(decoding: $0, as: UTF8.self) }
                out.append("\(cursor.sampleID):\(key)")
            }
            return out
        }
        #expect(try keys(reader.sampleKeys(inSplit: nil)) == ["0:k0", "1:k1", "2:dup", "3:dup", "4:ünï"])
        #expect(try keys(reader.sampleKeys(inSplit: try reader.splitID("val"))) == ["1:k1", "3:dup", "4:ünï"])

        var scanned: [Row] = []
        let members = try reader.membersInSampleOrder()
        while try members.next() {
            let ext = members.withExtensionBytes { String(decoding: $0, as: UTF8.self) }
            scanned.append(Row(sample: members.sampleID, ext: ext, location: members.location))
        }
        #expect(scanned.map(\.sample) == [0, 0, 1, 2, 2, 3, 4])
        #expect(scanned.sorted() == Self.rows.sorted())

        #expect(!reader.database.isInTransaction)
        let inside = try reader.readingSnapshot { (reader.database.isInTransaction, try reader.sampleRowCount()) }
        #expect(inside == (true, 5))
        #expect(!reader.database.isInTransaction)
        #expect(throws: IndexError.self) { try reader.readingSnapshot { try reader.splitID("none") } }
        #expect(!reader.database.isInTransaction)

        try reader.useSmallPageCache()
        #expect(try reader.database.scalarInt("PRAGMA cache_size") == -256)
    }

    @Test("an index without a content id")
    func noContentID() throws {
        let dir = try TemporaryDirectory()
        let reader = try Self.makeIndex(in: dir.path, contentID: nil)
        #expect(try reader.contentID() == nil)
    }
}

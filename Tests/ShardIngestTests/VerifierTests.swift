import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// CRC-32C bit by bit from its definition: independent of the library's tables.
func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

@Suite("ingest --checksums and verify")
struct VerifierTests {
    /// Two shards, `a.tar` and `b.tar`, three samples each (`.bin` of varied sizes and `.cls`).
    struct Fixture {
        let directory: TemporaryDirectory
        var index: String { directory.path + "/index.sqlite" }
        var files: [String: [(String, [UInt8])]] = [:]
        var tars: [String: TarWriter] = [:]

        init() throws {
            directory = try TemporaryDirectory(prefix: "shardstore-verify")
            for (s, shard) in ["a.tar", "b.tar"].enumerated() {
                var list: [(String, [UInt8])] = []
                for i in 0..<3 {
                    let key = "s\(s)k\(i)"
                    list.append(("\(key).bin", pattern(100 + 700 * i + s, seed: s * 10 + i)))
                    list.append(("\(key).cls", Array("\(i)".utf8)))
                }
                files[shard] = list
                tars[shard] = try writeShard(path(shard), list)
            }
        }

        func path(_ name: String) -> String { directory.path + "/" + name }

        /// (key, ext) -> the reference CRC of the member's bytes.
        var expectedCRCs: [String: UInt32] {
            var out: [String: UInt32] = [:]
            for list in files.values {
                for (name, bytes) in list { out[name] = referenceCRC32C(bytes) }
            }
            return out
        }

        func dataOffset(_ shard: String, _ name: String) -> Int64 {
            tars[shard]!.entries.first { $0.name == Array(name.utf8) }!.dataOffset
        }

        /// Changes byte `offset` of `shard` in place, keeping its size and modification time.
        func flip(_ shard: String, at offset: Int64) throws {
            let mtime = try modificationTime(path(shard))
            var bytes = try readBytes(path(shard))
            bytes[Int(offset)] ^= 0x01
            try writeBytes(bytes, to: path(shard))
            try setModificationTime(
                path(shard), seconds: Int(mtime / 1_000_000_000), nanoseconds: Int(mtime % 1_000_000_000))
        }

        /// `name` -> the recorded crc32c (nil for NULL), and every shard's has_checksums.
        func recorded() throws -> (crcs: [String: UInt32?], shards: [String: Int64]) {
            let db = try Database(path: index, mode: .readOnly)
            let st = try db.prepare(
                "SELECT s.key || '.' || m.ext, m.crc32c FROM members m JOIN samples s ON s.id = m.sample_id")
            var crcs: [String: UInt32?] = [:]
            while try st.step() { crcs[st.text(at: 0)] = st.isNull(at: 1) ? nil : UInt32(exactly: st.int64(at: 1)) }
            let sh = try db.prepare("SELECT path, has_checksums FROM shards")
            var shards: [String: Int64] = [:]
            while try sh.step() { shards[sh.text(at: 0)] = sh.int64(at: 1) }
            return (crcs, shards)
        }

        func ingest(checksums: Bool) throws -> IngestReport {
            try Ingest.run(
                index: index, shards: [path("a.tar"), path("b.tar")], options: IngestOptions(checksums: checksums))
        }
    }

    @Test("ingest --checksums records each member's CRC-32C, equal to one computed independently")
    func ingestRecordsChecksums() throws {
        let f = try Fixture()
        let report = try f.ingest(checksums: true)
        #expect(report.bytesChecksummed == Int64(f.tars.values.reduce(0) { $0 + $1.bytes.count }))
        let (crcs, shards) = try f.recorded()
        #expect(crcs.count == 12)
        #expect(crcs == f.expectedCRCs.mapValues { Optional($0) })
        #expect(shards == ["a.tar": 1, "b.tar": 1])
    }

    @Test("without --checksums nothing is recorded, and verify --data says how to record them")
    func noChecksums() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: false)
        let (crcs, shards) = try f.recorded()
        #expect(crcs.values.allSatisfy { $0 == nil })
        #expect(shards == ["a.tar": 0, "b.tar": 0])
        let error = #expect(throws: VerificationError.self) {
            try Verifier.run(index: f.index, options: VerificationOptions(data: true))
        }
        #expect(
            error?.description
                == "this index has no checksums; run `shardstore ingest --checksums \(f.index) SHARDS...` to record them (ingest reads the whole shards then)"
        )
        // Headers are checked all the same.
        let report = try Verifier.run(index: f.index)
        #expect(report.isClean && report.members == 12 && report.bytesRead == 12 * 512)
    }

    @Test("--checksums on unchanged shards without them records theirs; a later plain ingest keeps them")
    func checksumsAddedToUnchangedShards() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: false)
        let second = try f.ingest(checksums: true)
        #expect(second.unchanged == ["a.tar", "b.tar"])
        #expect(second.checksumsAdded == ["a.tar", "b.tar"])
        #expect(try f.recorded().crcs == f.expectedCRCs.mapValues { Optional($0) })
        let third = try f.ingest(checksums: false)
        #expect(third.unchanged == ["a.tar", "b.tar"] && third.checksumsAdded == [])
        #expect(try f.recorded().crcs == f.expectedCRCs.mapValues { Optional($0) })
        #expect(try f.recorded().shards == ["a.tar": 1, "b.tar": 1])
        #expect(try Verifier.run(index: f.index, options: VerificationOptions(data: true)).isClean)
        // A second --checksums run reads nothing more.
        let fourth = try f.ingest(checksums: true)
        #expect(fourth.checksumsAdded == [] && fourth.bytesChecksummed == 0)
    }

    @Test("--checksums refuses to record checksums of a shard rewritten in place with the same size and mtime")
    func checksumsRefuseRewrittenShard() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: false)
        // The name of the second member's header: s0k0.cls -> s0k0.cLs... flip a byte of its name.
        let headerOffset = f.dataOffset("a.tar", "s0k0.cls") - 512
        try f.flip("a.tar", at: headerOffset + 3)  // '0' (0x30) -> '1' (0x31): s0k1.cls
        let error = #expect(throws: IngestError.self) { try f.ingest(checksums: true) }
        // The checksum field no longer matches the block.
        let expectedPrefix =
            "shard 'a.tar' no longer matches the index at byte \(headerOffset) (member 's0k0.cls': no valid tar header precedes the member (checksum field "
        #expect(error?.description.hasPrefix(expectedPrefix) == true, "\(error.map { "\($0)" } ?? "")")
        #expect(
            error?.description.hasSuffix(
                "though its size and modification time are those recorded at ingest; run `shardstore verify \(f.index)` to list every difference, then `touch` the shard and ingest it again"
            ) == true)
        // Nothing was recorded.
        #expect(try f.recorded().crcs.values.allSatisfy { $0 == nil })
    }

    @Test("a clean dataset: no problems; headers only read 512 bytes a member")
    func clean() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: true)
        let headers = try Verifier.run(index: f.index)
        #expect(headers.isClean && headers.problems == [])
        #expect(headers.members == 12 && headers.shards == 2 && headers.bytesRead == 12 * 512)
        #expect(!headers.checkedData)
        let data = try Verifier.run(index: f.index, options: VerificationOptions(data: true))
        #expect(data.isClean && data.members == 12 && data.shards == 2 && data.checkedData)
        // One large read per shard, from its first header to its end.
        #expect(data.bytesRead == Int64(f.tars.values.reduce(0) { $0 + $1.bytes.count }))
    }

    @Test("a flipped data byte: headers pass, --data names the member")
    func flippedDataByte() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: true)
        let offset = f.dataOffset("b.tar", "s1k2.bin")
        try f.flip("b.tar", at: offset + 1000)
        #expect(try Verifier.run(index: f.index).isClean)
        let report = try Verifier.run(index: f.index, options: VerificationOptions(data: true))
        let bytes = f.files["b.tar"]!.first { $0.0 == "s1k2.bin" }!.1
        var damaged = bytes
        damaged[1000] ^= 1
        let expected = String(referenceCRC32C(bytes), radix: 16)
        let found = String(referenceCRC32C(damaged), radix: 16)
        func hex(_ s: String) -> String { "0x" + String(repeating: "0", count: 8 - s.count) + s }
        #expect(
            report.problems == [
                VerificationProblem(
                    kind: .data, shardPath: "b.tar", offset: offset, key: SampleKey("s1k2"), ext: "bin",
                    detail:
                        "the \(bytes.count) data bytes have CRC-32C \(hex(found)), \(hex(expected)) recorded at ingest; the shard changed since ingest",
                    expected: hex(expected), found: hex(found))
            ])
        #expect(report.problemCount == 1 && report.members == 12)
    }

    @Test("damaged index rows: a data offset moved by one block, a negative length, a missing sample")
    func damagedRows() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: true)
        let db = try Database(path: f.index, mode: .readWrite)
        try db.execute(
            """
            PRAGMA foreign_keys = OFF;
            UPDATE members SET data_offset = data_offset + 512
            WHERE ext = 'bin' AND sample_id = (SELECT id FROM samples WHERE key = 's0k2');
            UPDATE members SET length = -5 WHERE ext = 'cls' AND sample_id = (SELECT id FROM samples WHERE key = 's1k0');
            UPDATE members SET sample_id = 999 WHERE ext = 'cls' AND sample_id = (SELECT id FROM samples WHERE key = 's1k1');
            """)
        db.close()
        let report = try Verifier.run(index: f.index)
        let moved = f.dataOffset("a.tar", "s0k2.bin") + 512
        #expect(report.problems.count == 3, "\(report.problems)")
        guard report.problems.count == 3 else { return }
        // The block before the moved data is inside the member's data: not a header.
        #expect(report.problems[0].kind == .header)
        #expect(report.problems[0].shardPath == "a.tar" && report.problems[0].offset == moved - 512)
        #expect(report.problems[0].key == SampleKey("s0k2") && report.problems[0].ext == "bin")
        #expect(report.problems[0].detail.hasPrefix("no valid tar header precedes the member"))
        let negative = f.dataOffset("b.tar", "s1k0.cls")
        #expect(
            report.problems[1]
                == VerificationProblem(
                    kind: .row, shardPath: "b.tar", offset: negative, key: SampleKey("s1k0"), ext: "cls",
                    detail: "length -5 is negative"))
        #expect(
            report.problems[2]
                == VerificationProblem(
                    kind: .row, shardPath: "b.tar", offset: f.dataOffset("b.tar", "s1k1.cls"), key: nil, ext: "cls",
                    detail: "the row names sample id 999, which the index does not list"))
        #expect(
            report.problems[1].description
                == "shard 'b.tar' byte \(negative) key 's1k0' ext 'cls': index row: length -5 is negative")
    }

    @Test(
        "a changed shard re-indexed without --checksums loses them: verify --data names it; a grown shard is one line")
    func changedShardLosesChecksums() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: true)
        // b.tar gains a member: re-indexed by a plain ingest.
        var list = f.files["b.tar"]!
        list.append(("s1k3.bin", pattern(10, seed: 99)))
        try writeShard(f.path("b.tar"), list)
        try setModificationTime(f.path("b.tar"), seconds: 1_700_000_000)
        let second = try f.ingest(checksums: false)
        #expect(second.changed == ["b.tar"] && second.unchanged == ["a.tar"])
        #expect(try f.recorded().shards == ["a.tar": 1, "b.tar": 0])
        let error = #expect(throws: VerificationError.self) {
            try Verifier.run(index: f.index, options: VerificationOptions(data: true))
        }
        #expect(
            error?.description
                == "1 of 2 shards have no checksums ('b.tar' is one); run `shardstore ingest --checksums \(f.index) SHARDS...` to record them (ingest reads the shards without them whole)"
        )
        // Only a.tar is in split "a": --data works there.
        _ = try Ingest.run(index: f.index, shards: [f.path("a.tar")], options: IngestOptions(split: "a"))
        let onlyA = try Verifier.run(index: f.index, options: VerificationOptions(split: "a", data: true))
        #expect(onlyA.isClean && onlyA.shards == 1 && onlyA.members == 6)
        // Bytes appended to a.tar: one shard line (its members are still checked, and pass).
        var grown = try readBytes(f.path("a.tar"))
        grown += [UInt8](repeating: 0, count: 512)
        try writeBytes(grown, to: f.path("a.tar"))
        let report = try Verifier.run(index: f.index, options: VerificationOptions(split: "a"))
        let size = Int64(grown.count)
        #expect(
            report.problems == [
                VerificationProblem(
                    kind: .shard, shardPath: "a.tar",
                    detail: "its size is \(size) bytes, \(size - 512) at ingest; run ingest again",
                    expected: "\(size - 512)", found: "\(size)")
            ])
    }

    @Test("--on-duplicate last with --checksums: the replacing copy's checksum is recorded")
    func duplicateLastKeepsItsChecksum() throws {
        let directory = try TemporaryDirectory(prefix: "shardstore-verify")
        let first = pattern(700, seed: 1)
        let second = pattern(900, seed: 2)
        try writeShard(directory.path + "/a.tar", [("k.bin", first), ("k.cls", [0x31])])
        try writeShard(directory.path + "/b.tar", [("k.bin", second)])
        let index = directory.path + "/index.sqlite"
        _ = try Ingest.run(
            index: index, shards: [directory.path + "/a.tar", directory.path + "/b.tar"],
            options: IngestOptions(onDuplicate: .last, checksums: true))
        let db = try Database(path: index, mode: .readOnly)
        #expect(
            try db.scalarInt("SELECT crc32c FROM members WHERE ext = 'bin'") == Int64(referenceCRC32C(second)))
        #expect(try db.scalarInt("SELECT crc32c FROM members WHERE ext = 'cls'") == Int64(referenceCRC32C([0x31])))
        db.close()
        #expect(try Verifier.run(index: index, options: VerificationOptions(data: true)).isClean)
    }

    @Test("checksums in one pass: pax and GNU long names, a member larger than the 4 MiB buffer, empty members")
    func checksumsWithExtendedHeadersAndLargeMembers() throws {
        let directory = try TemporaryDirectory(prefix: "shardstore-verify")
        let long = String(repeating: "d", count: 120) + "/" + String(repeating: "k", count: 90)
        let big = pattern(5 << 20, seed: 5)
        var files: [(String, [UInt8], TarWriter.Format)] = [
            ("\(long)1.bin", pattern(3000, seed: 1), .pax),
            ("\(long)2.bin", pattern(7000, seed: 2), .gnu),
            ("big.bin", big, .ustar),
            ("empty.bin", [], .ustar),
            ("tail.cls", [0x37], .ustar),
        ]
        var tar = TarWriter(format: .ustar)
        for (name, bytes, format) in files { tar.addFile(name, bytes, format: format) }
        tar.finish()
        try tar.write(to: directory.path + "/a.tar")
        let index = directory.path + "/index.sqlite"
        let report = try Ingest.run(
            index: index, shards: [directory.path + "/a.tar"], options: IngestOptions(checksums: true))
        #expect(report.members == 5)
        let db = try Database(path: index, mode: .readOnly)
        let st = try db.prepare(
            "SELECT s.key || '.' || m.ext, m.crc32c FROM members m JOIN samples s ON s.id = m.sample_id")
        var recorded: [String: Int64] = [:]
        while try st.step() { recorded[st.text(at: 0)] = st.int64(at: 1) }
        db.close()
        files.sort { $0.0 < $1.0 }
        #expect(recorded == Dictionary(uniqueKeysWithValues: files.map { ($0.0, Int64(referenceCRC32C($0.1))) }))
        let verified = try Verifier.run(index: index, options: VerificationOptions(data: true))
        #expect(verified.isClean && verified.members == 5, "\(verified.problems)")
    }

    @Test("a problem is one line: newlines, quotes and bytes that are not UTF-8 are escaped")
    func problemLineEscapes() {
        let p = VerificationProblem(
            kind: .header, shardPath: "dir\nx'.tar", offset: 1024, key: SampleKey(bytes: Array("k\n1".utf8) + [0xFF]),
            ext: "b\\in", detail: "the header there names 'x'")
        #expect(
            p.description
                == "shard 'dir\\x0ax\\'.tar' byte 1024 key 'k\\x0a1\\xff' ext 'b\\\\in': header: the header there names 'x'"
        )
        #expect(!p.description.contains("\n"))
    }

    @Test("an index at schema 1 opened read-only still reads and verifies; the next write migrates it")
    func schemaOneIndex() throws {
        let f = try Fixture()
        _ = try f.ingest(checksums: false)
        let db = try Database(path: f.index, mode: .readWrite)
        try db.execute(
            """
            ALTER TABLE members DROP COLUMN crc32c;
            ALTER TABLE shards DROP COLUMN has_checksums;
            DELETE FROM schema_migrations WHERE version = 2;
            PRAGMA user_version = 1;
            """)
        db.close()
        let dataset = try Dataset(index: f.index)
        #expect(try dataset.sample(forKey: SampleKey("s1k2")).members["bin"] == f.files["b.tar"]![4].1)
        #expect(try IndexReader(path: f.index).hasChecksumColumns() == false)
        #expect(try Verifier.run(index: f.index).isClean)
        #expect(throws: VerificationError.noChecksums(index: f.index, missing: 2, total: 2, example: "a.tar")) {
            try Verifier.run(index: f.index, options: VerificationOptions(data: true))
        }
        _ = try f.ingest(checksums: true)
        let reader = try IndexReader(path: f.index)
        #expect(try reader.summary().schemaVersion == 4)
        #expect(try f.recorded().crcs == f.expectedCRCs.mapValues { Optional($0) })
    }
}

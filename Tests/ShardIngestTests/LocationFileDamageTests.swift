import Dispatch
import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

@testable import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// A few samples in 2 shards (a pax one and a GNU one): one sample has members in both shards,
/// two have names too long for a tar header (pax and GNU long-name blocks before their own
/// header), and, with `longKey`, one has a key of that many bytes, whose record goes to the
/// overflow area.
struct DamageFixture {
    let directory: TemporaryDirectory
    let index: String
    /// Every sample, read through the in-memory table (checked against the shards' contents).
    let samples: [Sample]
    var path: String { index + "-locations" }

    init(longKey: Int? = nil) throws {
        directory = try TemporaryDirectory()
        let paxName = "p/" + String(repeating: "x", count: 115)
        let gnuName = "g/" + String(repeating: "y", count: 130)
        var first: [(String, [UInt8])] = [("a.jpg", pattern(700, seed: 1)), ("a.cls", Array("3".utf8))]
        if let longKey {
            let key = "long/" + String(repeating: "k", count: longKey - 5)
            first += [(key + ".jpg", pattern(1200, seed: 2)), (key + ".cls", Array("4".utf8))]
        }
        first += [("m.jpg", pattern(513, seed: 3)), (paxName + ".json", Array("{\"p\": 1}".utf8))]
        try writeShard(directory.path + "/s0.tar", first, format: .pax)
        let second: [(String, [UInt8])] = [
            ("m.cls", Array("5".utf8)), ("b.jpg", pattern(1500, seed: 4)), ("b.json", Array("{}".utf8)),
            (gnuName + ".txt", pattern(90, seed: 5)),
        ]
        try writeShard(directory.path + "/s1.tar", second, format: .gnu)
        index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [directory.path + "/s0.tar", directory.path + "/s1.tar"])

        var expected: [SampleKey: [String: [UInt8]]] = [:]
        for (name, bytes) in first + second {
            let (key, ext) = splitName(name)
            expected[key, default: [:]][ext] = bytes
        }
        let table = try Dataset(index: index, strategy: .pread, options: Dataset.Options(lookup: .table))
        samples = try (0..<table.count).map { try table[$0] }
        #expect(samples.count == (longKey == nil ? 5 : 6))
        #expect(Dictionary(uniqueKeysWithValues: samples.map { ($0.key, $0.members) }) == expected)
        #expect(samples.contains { $0.key == SampleKey("m") && $0.extensions == ["jpg", "cls"] })
    }

    /// Opens the dataset with `--lookup file` and pread, reads every sample (by position, by
    /// `key(at:)` and in one pass) and returns what differs from the expected samples.
    func readBack() throws -> [String] {
        let ds = try Dataset(index: index, strategy: .pread, options: Dataset.Options(lookup: .file))
        var problems: [String] = []
        if ds.lookup != .file(path: path) { problems.append("lookup \(ds.lookup)") }
        for p in 0..<ds.count {
            if try ds[p] != samples[p] { problems.append("sample \(p)") }
            if try ds.key(at: p) != samples[p].key { problems.append("key \(p)") }
        }
        var p = 0
        try ds.forEachSample { view in
            if view.copy() != samples[p] { problems.append("pass \(p)") }
            p += 1
        }
        return problems
    }
}

/// The figures of a location file's header, and its slots.
struct LocationLayout {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
    var slotSize: Int { u64(80) }
    var overflowStart: Int { u64(96) }
    var tailStart: Int { u64(104) }
    func slot(_ index: Int) -> Int { 128 + index * slotSize }
}

/// Writes `value` little-endian at `at`.
func put<T: FixedWidthInteger>(_ value: T, at: Int, in bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[at + i] = b } }
}

/// Gives the slot or overflow record of sample `index` at `range` a checksum that matches again.
func reseal(_ bytes: inout [UInt8], _ range: Range<Int>, index: Int) {
    let crc = bytes.withUnsafeBytes { LocationSlot.checksum(UnsafeRawBufferPointer(rebasing: $0[range]), index: index) }
    put(crc, at: range.lowerBound, in: &bytes)
}

@Suite("A damaged location file never changes the bytes read")
struct LocationFileDamageTests {
    /// Flips `offsets` of the file in turn (each with `mask`) and reads everything back after each.
    func flipEach(_ f: DamageFixture, _ offsets: [Int], mask: (Int) -> UInt8) throws {
        let good = try readBytes(f.path)
        var problems: [String] = []
        for at in offsets {
            var bad = good
            bad[at] ^= mask(at)
            try writeBytes(bad, to: f.path)
            problems += try f.readBack().map { "byte \(at): \($0)" }
            // Every flip is caught: rewritten at open (header, tail), or unlinked once its slot
            // was read (the next open writes it again).
            let now = try? readBytes(f.path)
            if now != nil, now != good { problems.append("byte \(at): the damaged file was kept") }
        }
        #expect(problems == [])
        try writeBytes(good, to: f.path)
    }

    @Test("every byte flipped in turn, records in their slots: exact bytes and keys, and the file is rewritten")
    func everyByteInSlots() throws {
        let f = try DamageFixture()
        let layout = LocationLayout(try readBytes(f.path))
        #expect(layout.overflowStart == layout.tailStart)  // every record fits its slot
        // One bit (a different one from byte to byte), or the whole byte for every third.
        try flipEach(f, Array(0..<layout.bytes.count)) { $0 % 3 == 2 ? 0xff : 1 << ($0 % 8) }
    }

    @Test("every byte flipped in turn, a key too long for any slot: exact bytes and keys")
    func everyByteWithOverflow() throws {
        let f = try DamageFixture(longKey: 4200)
        let layout = LocationLayout(try readBytes(f.path))
        // More than 1% of records exceed the largest slot: every slot points to its record.
        #expect(layout.slotSize == 24)
        #expect(layout.tailStart - layout.overflowStart > 4200)
        // Every byte but most of the long key (every 29th of its bytes).
        let long = try #require(f.samples.firstIndex { $0.key.bytes.count == 4200 })
        let record = layout.u64(layout.slot(long) + 8)
        let key = (record + 12 + 2 * 24 + 16)..<(record + 12 + 2 * 24 + 4200 - 16)
        let offsets = (0..<layout.bytes.count).filter { !key.contains($0) || ($0 - key.lowerBound) % 29 == 0 }
        try flipEach(f, offsets) { 1 << ($0 % 8) }
    }

    @Test("huge or impossible values with a matching checksum: exact bytes, no allocation, no trap")
    func impossibleValues() throws {
        let f = try DamageFixture()
        let good = try readBytes(f.path)
        let layout = LocationLayout(good)
        let slot = layout.slot(1)
        let member = slot + 12
        // Each change to sample 1's slot (member 0), then resealed.
        let changes: [(String, (inout [UInt8]) -> Void)] = [
            ("member count", { put(UInt32.max - 1, at: slot + 4, in: &$0) }),
            ("member count 2^31", { put(UInt32(1) << 31, at: slot + 4, in: &$0) }),
            ("key length", { put(UInt32.max, at: slot + 8, in: &$0) }),
            ("offset unaligned", { put(UInt64(512 + 256), at: member, in: &$0) }),
            ("offset 0", { put(UInt64(0), at: member, in: &$0) }),
            ("offset 1 (flag only)", { put(UInt64(1), at: member, in: &$0) }),
            ("offset past 48 bits", { put(UInt64(1) << 50, at: member, in: &$0) }),
            ("offset past the shard", { put(UInt64(1) << 30, at: member, in: &$0) }),
            ("length -1", { put(Int64(-1), at: member + 8, in: &$0) }),
            ("length past the shard", { put(Int64(1) << 30, at: member + 8, in: &$0) }),
            ("length 274877907544", { put(Int64(274_877_907_544), at: member + 8, in: &$0) }),
            ("length Int64.max", { put(Int64.max, at: member + 8, in: &$0) }),
            ("shard 2", { put(UInt32(2), at: member + 16, in: &$0) }),
            ("shard UInt32.max", { put(UInt32.max, at: member + 16, in: &$0) }),
            ("extension 99", { put(UInt32(99), at: member + 20, in: &$0) }),
            ("overflow mark", { put(UInt32.max, at: slot + 4, in: &$0) }),
        ]
        var problems: [String] = []
        for (name, change) in changes {
            var bad = good
            change(&bad)
            reseal(&bad, slot..<(slot + layout.slotSize), index: 1)
            try writeBytes(bad, to: f.path)
            problems += try f.readBack().map { "\(name): \($0)" }
            if FileManager.default.fileExists(atPath: f.path) { problems.append("\(name): the file was kept") }
        }
        #expect(problems == [])
    }

    @Test("huge overflow pointers and records with a matching checksum: exact bytes, no allocation, no trap")
    func impossibleOverflowValues() throws {
        let f = try DamageFixture(longKey: 4200)
        let good = try readBytes(f.path)
        let layout = LocationLayout(good)
        let long = try #require(f.samples.firstIndex { $0.key.bytes.count == 4200 })
        let slot = layout.slot(long)
        let record = layout.u64(slot + 8)
        let length = layout.u64(slot + 16)
        let resealSlot = { (bytes: inout [UInt8]) in reseal(&bytes, slot..<(slot + 24), index: long) }
        let resealRecord = { (bytes: inout [UInt8]) in reseal(&bytes, record..<(record + length), index: long) }
        let changes: [(String, (inout [UInt8]) -> Void)] = [
            ("pointer length 274877907544", { put(UInt64(274_877_907_544), at: slot + 16, in: &$0) }),
            ("pointer length UInt64.max", { put(UInt64.max, at: slot + 16, in: &$0) }),
            ("pointer offset UInt64.max", { put(UInt64.max, at: slot + 8, in: &$0) }),
            ("pointer offset Int64.max", { put(UInt64(Int64.max), at: slot + 8, in: &$0) }),
            ("pointer offset 0", { put(UInt64(0), at: slot + 8, in: &$0) }),
            ("pointer into the tail", { put(UInt64(layout.tailStart - 8), at: slot + 8, in: &$0) }),
            ("pointer length short by one", { put(UInt64(length - 1), at: slot + 16, in: &$0) }),
            ("pointer to another record", { put(UInt64(layout.overflowStart), at: slot + 8, in: &$0) }),
            ("record member count", { put(UInt32.max - 1, at: record + 4, in: &$0) }),
            ("record key length", { put(UInt32.max, at: record + 8, in: &$0) }),
            ("record key one byte shorter", { put(UInt32(4199), at: record + 8, in: &$0) }),
        ]
        var problems: [String] = []
        for (name, change) in changes {
            var bad = good
            change(&bad)
            if name.hasPrefix("pointer") { resealSlot(&bad) } else { resealRecord(&bad) }
            try writeBytes(bad, to: f.path)
            problems += try f.readBack().map { "\(name): \($0)" }
            if FileManager.default.fileExists(atPath: f.path) { problems.append("\(name): the file was kept") }
        }
        #expect(problems == [])
    }

    @Test("a slot read for another sample fails its checksum, which covers the sample's index")
    func slotOfAnotherSample() throws {
        let f = try DamageFixture()
        var bad = try readBytes(f.path)
        let layout = LocationLayout(bad)
        let (zero, one) = (layout.slot(0), layout.slot(1))
        let first = Array(bad[zero..<one])
        bad.replaceSubrange(zero..<one, with: bad[one..<(one + layout.slotSize)])
        bad.replaceSubrange(one..<(one + layout.slotSize), with: first)
        try writeBytes(bad, to: f.path)
        #expect(try f.readBack() == [])
        #expect(!FileManager.default.fileExists(atPath: f.path))
    }

    @Test("the decoder names what it refuses (LocationSlot.decode, the fuzzing entry point)")
    func decodeReasons() throws {
        let f = try DamageFixture()
        let good = try readBytes(f.path)
        let layout = LocationLayout(good)
        let shardSizes = try IndexReader(path: f.index).shards().map(\.size)
        let bounds = LocationSlot.Bounds(
            slotSize: layout.slotSize, shardSizes: shardSizes, extensionCount: layout.u64(72),
            overflowStart: Int64(layout.overflowStart), tailStart: Int64(layout.tailStart))
        func decode(_ change: (inout [UInt8]) -> Void, index: Int = 1, seal: Bool = true) -> String {
            var slot = Array(good[layout.slot(1)..<(layout.slot(1) + layout.slotSize)])
            change(&slot)
            if seal { reseal(&slot, 0..<slot.count, index: index) }
            return slot.withUnsafeBytes { bytes in
                do {
                    guard case .record(let r) = try LocationSlot.decode(bytes, index: index, bounds: bounds) else {
                        return "overflow"
                    }
                    return "\(r.memberCount) members, key \(String(decoding: r.key, as: UTF8.self))"
                } catch {
                    return String(describing: error)
                }
            }
        }
        #expect(LocationSlot.maxOffset == PackedMember.maxOffset)
        #expect(layout.u64(72) == 4)
        #expect(decode({ _ in }) == "2 members, key m")
        #expect(decode({ $0[40] ^= 1 }, seal: false) == "checksum mismatch")
        #expect(decode({ _ in }, index: 2, seal: false) == "checksum mismatch")
        #expect(decode({ put(UInt32.max - 1, at: 4, in: &$0) }) == "4294967294 members in \(layout.slotSize) bytes")
        #expect(decode({ put(UInt32.max, at: 8, in: &$0) }) == "a key of 4294967295 bytes in \(layout.slotSize - 60)")
        #expect(decode({ put(UInt64(768), at: 12, in: &$0) }) == "member 0: data offset 768")
        #expect(decode({ put(Int64(-1), at: 20, in: &$0) }) == "member 0: length -1")
        #expect(decode({ put(UInt32(2), at: 28, in: &$0) }) == "member 0: shard number 2 of 2")
        #expect(decode({ put(UInt32(4), at: 32, in: &$0) }) == "member 0: extension number 4 of 4")
        #expect(
            decode({ put(Int64(shardSizes[0]), at: 20, in: &$0) })
                == "member 0: \(shardSizes[0]) bytes at \(layout.u64(layout.slot(1) + 12)), past the shard's \(shardSizes[0]) bytes"
        )
        #expect(
            decode({
                put(UInt32.max, at: 4, in: &$0)
                put(UInt64(layout.tailStart), at: 8, in: &$0)
                put(UInt64(12), at: 16, in: &$0)
            }) == "an overflow pointer (\(layout.tailStart), 12) outside the overflow area")
        let short = [UInt8](repeating: 0, count: 8)
        let refused = short.withUnsafeBytes { bytes -> String in
            do {
                _ = try LocationSlot.decode(bytes, index: 0, bounds: bounds)
                return ""
            } catch { return String(describing: error) }
        }
        #expect(refused == "a slot of 8 bytes, not \(layout.slotSize)")
    }

    @Test("a damaged header or tail is caught by its checksum at open, and the file is written again")
    func headerAndTail() throws {
        let f = try DamageFixture()
        let good = try readBytes(f.path)
        let layout = LocationLayout(good)
        let reader = try IndexReader(path: f.index)
        let id = try #require(try LocationFile.contentID(of: reader.database))
        let shards = try reader.shards()
        func reason(_ change: (inout [UInt8]) -> Void) throws -> String {
            var bad = good
            change(&bad)
            try writeBytes(bad, to: f.path)
            do {
                _ = try LocationFile.open(f.path, contentID: id, samples: f.samples.count, shards: shards)
                return "opened"
            } catch {
                return String(describing: error)
            }
        }
        // The member count (byte 56) and an extension's total bytes (in the tail) are checked by
        // nothing else.
        #expect(try reason { $0[56] ^= 1 } == "'\(f.path)' is damaged (header checksum)")
        #expect(try reason { $0[layout.tailStart + 2 * 8] ^= 1 } == "'\(f.path)' is damaged (tail checksum)")
        #expect(try reason { $0[good.count - 1] ^= 0x80 } == "'\(f.path)' is damaged (tail checksum)")
        #expect(try reason { $0[125] ^= 1 } == "'\(f.path)' is damaged (header checksum)")
        #expect(try reason { _ in } == "opened")
        try writeBytes(
            {
                var bad = good
                bad[56] ^= 1
                return bad
            }(), to: f.path)
        #expect(try f.readBack() == [])
        #expect(try readBytes(f.path) == good)
    }

    @Test("a file of format version 1 is written again at open")
    func versionOne() throws {
        let f = try DamageFixture()
        let good = try readBytes(f.path)
        var old = good
        put(UInt32(1), at: 8, in: &old)
        try writeBytes(old, to: f.path)
        let reader = try IndexReader(path: f.index)
        let id = try #require(try LocationFile.contentID(of: reader.database))
        do {
            _ = try LocationFile.open(f.path, contentID: id, samples: f.samples.count, shards: try reader.shards())
            Issue.record("a version 1 file was opened")
        } catch {
            #expect(String(describing: error) == "'\(f.path)' has format version 1, not 2")
        }
        #expect(try f.readBack() == [])
        #expect(try readBytes(f.path) == good)
        // `ensure` (what ingest runs) rewrites it too.
        try writeBytes(old, to: f.path)
        #expect(try LocationFile.ensure(index: f.index).bytes == Int64(good.count))
        #expect(try readBytes(f.path) == good)
    }

    @Test("a damaged slot does not unlink a newer file that replaced the one opened")
    func replacedFileIsKept() throws {
        let f = try DamageFixture()
        let good = try readBytes(f.path)
        let layout = LocationLayout(good)
        var bad = good
        bad[layout.slot(2) + 5] ^= 1
        try writeBytes(bad, to: f.path)
        let ds = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .file))
        // Another process writes a fresh file (a new inode) while this dataset is open.
        try writeBytes(good, to: f.path + ".new")
        #expect(rename(f.path + ".new", f.path) == 0)
        #expect(try ds[2] == f.samples[2])
        #expect(try readBytes(f.path) == good)
    }

    @Test("every slot damaged, in a split: each sample read from the index, positions kept")
    func splitWithEverySlotDamaged() throws {
        let f = try StrategyFixture(shards: 3, perShard: 5)
        let path = f.index + "-locations"
        var bytes = try readBytes(path)
        let layout = LocationLayout(bytes)
        for i in 0..<15 { bytes[layout.slot(i) + 9] ^= 0x10 }
        let table = try Dataset(
            index: f.index, split: "val", strategy: .pread, options: Dataset.Options(lookup: .table))
        for exts in [nil, ["cls"]] {
            try writeBytes(bytes, to: path)
            let ds = try Dataset(
                index: f.index, split: "val", extensions: exts, strategy: .pread,
                options: Dataset.Options(lookup: .file))
            #expect(ds.lookup == .file(path: path))
            let expected = try f.expected(split: "val", exts: exts)
            #expect(try (0..<ds.count).map { try ExpectedSample(key: ds[$0].key, members: ds[$0].members) } == expected)
            #expect(try (0..<ds.count).map { try ds[$0].index } == (0..<table.count).map { try table[$0].index })
            #expect(try (0..<ds.count).map { try ds.key(at: $0) } == expected.map(\.key))
        }
    }

    @Test("4 threads reading through a file whose every slot is damaged: each gets the exact samples")
    func concurrentFallback() throws {
        let f = try StrategyFixture(shards: 2, perShard: 8)
        let path = f.index + "-locations"
        var bytes = try readBytes(path)
        let layout = LocationLayout(bytes)
        for i in 0..<16 { bytes[layout.slot(i) + 4 + i % 8] ^= 0x01 }
        try writeBytes(bytes, to: path)
        let ds = try Dataset(index: f.index, strategy: .pread, options: Dataset.Options(lookup: .file))
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            do {
                for round in 0..<3 {
                    for p in 0..<ds.count {
                        let q = (p + thread * 5 + round) % ds.count
                        let sample = try ds[q]
                        if sample.key != f.keys[q] || sample.members != f.members[f.keys[q]] {
                            failures.withLock { $0.append("thread \(thread): sample \(q)") }
                        }
                    }
                }
            } catch {
                failures.withLock { $0.append("thread \(thread): \(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("each member carries whether it had pax or GNU long-name blocks before its own header")
    func extendedFlag() throws {
        let f = try DamageFixture(longKey: 4200)
        let reader = try IndexReader(path: f.index)
        let id = try #require(try LocationFile.contentID(of: reader.database))
        let file = try LocationFile.open(f.path, contentID: id, samples: f.samples.count, shards: try reader.shards())
        var expected: [Int: [Bool]] = [:]
        let rows = try reader.database.prepare(
            "SELECT sample_id, header_offset < data_offset - 512 FROM members ORDER BY shard_id, data_offset")
        while try rows.step() { expected[Int(rows.int64(at: 0)), default: []].append(rows.int64(at: 1) != 0) }
        var extended: [String: [Bool]] = [:]
        for i in 0..<f.samples.count {
            let flags = try #require(
                try file.withRecord(i) { r in (0..<r.memberCount).map { r.member($0).isExtended } })
            #expect(flags == expected[i])
            extended[String(String(decoding: f.samples[i].key.bytes, as: UTF8.self).prefix(6))] = flags
        }
        // The pax and GNU long names, and the long key (pax), had blocks before their own header.
        #expect(
            extended == [
                "a": [false, false], "long/k": [true, true], "m": [false, false],
                "p/xxxx": [true], "b": [false, false], "g/yyyy": [true],
            ])
        #expect(!file.isDiscarded)
    }

    @Test("an index row no read could use is written as a slot that fails its checks: that sample goes to the index")
    func unusableIndexRow() throws {
        let f = try DamageFixture()
        do {
            let db = try Database(path: f.index, mode: .readWrite)
            try db.execute("UPDATE members SET data_offset = data_offset + 1 WHERE sample_id = 3 AND ext = 'jpg'")
            db.close()
        }
        #expect(unlink(f.path) == 0)
        try LocationFile.ensure(index: f.index)
        let reader = try IndexReader(path: f.index)
        let id = try #require(try LocationFile.contentID(of: reader.database))
        let file = try LocationFile.open(f.path, contentID: id, samples: f.samples.count, shards: try reader.shards())
        for i in [0, 1, 2, 4] { #expect(try file.withRecord(i) { $0.memberCount } == f.samples[i].members.count) }
        #expect(!file.isDiscarded)
        #expect(try file.withRecord(3) { $0.memberCount } == nil)
        #expect(file.isDiscarded)
    }

    @Test("CRC-32C: the standard check value, chaining, and every single-byte change detected")
    func crc() {
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
        let a = check.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<4])) }
        #expect(
            check.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[4...]), continuing: a) }
                == 0xE306_9283)
        let zeros = [UInt8](repeating: 0, count: 32)
        #expect(zeros.withUnsafeBytes { CRC32C.checksum($0) } == 0x8A91_36AA)
        let data = pattern(300, seed: 9)
        let base = data.withUnsafeBytes { CRC32C.checksum($0) }
        var missed = 0
        for i in 0..<data.count {
            for delta in [UInt8(1), 0x80, 0xff, 0x5a] {
                var changed = data
                changed[i] ^= delta
                if changed.withUnsafeBytes({ CRC32C.checksum($0) }) == base { missed += 1 }
            }
        }
        #expect(missed == 0)
    }
}

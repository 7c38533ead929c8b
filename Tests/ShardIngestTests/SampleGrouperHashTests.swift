import Foundation
import ShardStore
import ShardTestSupport
import Testing

@testable import ShardIngest

/// The grouper remembers keys by a 64-bit hash and settles collisions by reading the index back:
/// with a hash under which every key collides, it must group exactly as with its own hash.
@Suite("Key grouping by hash: collisions group as distinct keys do")
struct SampleGrouperHashTests {
    /// Two shards' members, in archive order: non-adjacent repeats within a shard and across
    /// shards, adjacent runs, and a copy of (key, extension) for the duplicate policies.
    static let shards: [[(key: String, ext: String)]] = [
        [
            ("a", "jpg"), ("b", "jpg"), ("a", "txt"), ("c", "jpg"), ("c", "txt"), ("b", "txt"), ("a", "jpg"),
            ("d", "jpg"),
        ],
        [("e", "jpg"), ("c", "cls"), ("a", "cls"), ("a", "seg.png"), ("b", "jpg"), ("f", "jpg"), ("e", "txt")],
    ]

    /// Every sample row and member row the grouper wrote, with its counts.
    struct Outcome: Equatable {
        var samples: [String]
        var members: [String]
        var counts: [Int]
    }

    static func group(
        policy: DuplicatePolicy, hash: ((SampleKey) -> UInt64)?, recentLimit: Int = SampleGrouper.defaultRecentLimit
    ) throws -> Outcome {
        let dir = try TemporaryDirectory()
        let db = try Database(path: dir.path + "/index.sqlite", mode: .readWriteCreate)
        try IndexFile.migrator.migrate(db)
        let writer = try IndexWriter(database: db)
        return try db.inTransaction {
            var grouper = SampleGrouper(
                writer: writer, policy: policy, indexWasEmpty: true, nextID: 0, shardPaths: [0: "a", 1: "b"],
                hash: hash ?? SampleGrouper.hash, recentLimit: recentLimit)
            for (shard, members) in shards.enumerated() {
                var scan = ShardScan()
                for (n, m) in members.enumerated() {
                    if !scan.extensions.contains(m.ext) { scan.extensions.append(m.ext) }
                    let offset = Int64(n) * 1024
                    scan.members.append(
                        ScannedMember(
                            key: SampleKey(m.key), ext: Int32(scan.extensions.firstIndex(of: m.ext)!),
                            headerOffset: offset, dataOffset: offset + 512, length: Int64(n)))
                }
                try db.execute(
                    "INSERT INTO shards(id, path, size, mtime_ns, member_count, skipped_count, ingested_at) VALUES (\(shard), 's\(shard)', 0, 0, 0, 0, '')"
                )
                _ = try grouper.add(scan, shardID: Int64(shard))
            }
            try writer.flush()
            var samples: [String] = []
            let s = try db.prepare("SELECT id, key, shard_id, first_offset FROM samples ORDER BY id")
            while try s.step() {
                samples.append("\(s.int64(at: 0)) \(s.text(at: 1)) \(s.int64(at: 2))@\(s.int64(at: 3))")
            }
            var members: [String] = []
            let m = try db.prepare(
                "SELECT sample_id, ext, shard_id, header_offset, length FROM members ORDER BY sample_id, ext")
            while try m.step() {
                members.append(
                    "\(m.int64(at: 0)).\(m.text(at: 1)) \(m.int64(at: 2))@\(m.int64(at: 3)) \(m.int64(at: 4))")
            }
            let counts = [
                grouper.created, grouper.dropped, grouper.replaced, grouper.relocated, grouper.keptExtra,
                grouper.seenAgain, grouper.samplesTouched,
            ]
            return Outcome(samples: samples, members: members, counts: counts)
        }
    }

    @Test(
        "every key colliding, and every other key colliding, groups as the real hash does",
        arguments: [DuplicatePolicy.first, .last, .keep])
    func collisions(policy: DuplicatePolicy) throws {
        let expected = try Self.group(policy: policy, hash: nil)
        // Six keys; under `keep` the copies of a.jpg and b.jpg start two more samples.
        #expect(expected.samples.count == (policy == .keep ? 8 : 6))
        // Keys seen again are found among the recent samples, or (none kept, or too few) read
        // back from the index.
        for recentLimit in [SampleGrouper.defaultRecentLimit, 0, 1, 2] {
            #expect(try Self.group(policy: policy, hash: nil, recentLimit: recentLimit) == expected)
            #expect(try Self.group(policy: policy, hash: { _ in 42 }, recentLimit: recentLimit) == expected)
            #expect(
                try Self.group(policy: policy, hash: { UInt64($0.bytes[0] & 1) }, recentLimit: recentLimit) == expected)
        }
    }

    @Test("under the error policy a colliding hash still finds the copy, kept recent or read back")
    func errorPolicy() throws {
        for recentLimit in [SampleGrouper.defaultRecentLimit, 0] {
            #expect(throws: IngestError.self) {
                try Self.group(policy: .error, hash: { _ in 42 }, recentLimit: recentLimit)
            }
            #expect(throws: IngestError.self) { try Self.group(policy: .error, hash: nil, recentLimit: recentLimit) }
        }
    }

    @Test("the hash is stable and spreads keys that differ in one byte")
    func hashSpread() {
        #expect(SampleGrouper.hash(SampleKey("000123")) == SampleGrouper.hash(SampleKey("000123")))
        var seen = Set<UInt64>()
        for i in 0..<100_000 { seen.insert(SampleGrouper.hash(SampleKey(String(format: "%09d", i)))) }
        #expect(seen.count == 100_000)
        #expect(SampleGrouper.hash(SampleKey("")) != SampleGrouper.hash(SampleKey(bytes: [0])))
    }
}

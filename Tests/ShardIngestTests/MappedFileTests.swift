import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

@Suite("MappedFile: read-only mappings of whole shards")
struct MappedFileTests {
    @Test("bytes through the mapping equal the file's bytes at many offsets")
    func bytesMatch() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/s.bin"
        let bytes = pattern(3 * 4096 + 123, seed: 5)
        try writeBytes(bytes, to: path)
        let file = try MappedFile(path: path)
        #expect(file.byteCount == Int64(bytes.count))
        #expect(file.status == (try FileStatus.of(path)))
        let counts = [0, 1, 7, 512, 4096, 5000]
        for offset in stride(from: 0, through: bytes.count, by: 97) + [4095, 4096, 8191, bytes.count - 1] {
            for count in counts where offset + count <= bytes.count {
                let viewed = try file.withBytes(at: Int64(offset), count: count) { Array($0) }
                #expect(viewed == Array(bytes[offset..<offset + count]), "\(count) bytes at \(offset)")
                var copied = [UInt8](repeating: 0, count: count)
                let n = try copied.withUnsafeMutableBytes { try file.read(into: $0, at: Int64(offset)) }
                #expect(n == count)
                #expect(copied == viewed)
            }
        }
        let whole = try file.withBytes(at: 0, count: bytes.count) { Array($0) }
        #expect(whole == bytes)
        // The RandomAccessBytes read is short at the end and empty past it.
        var tail = [UInt8](repeating: 0, count: 50)
        #expect(try tail.withUnsafeMutableBytes { try file.read(into: $0, at: Int64(bytes.count - 10)) } == 10)
        #expect(Array(tail[..<10]) == Array(bytes[(bytes.count - 10)...]))
        #expect(try tail.withUnsafeMutableBytes { try file.read(into: $0, at: Int64(bytes.count + 3)) } == 0)
    }

    @Test("ranges outside the mapping throw naming the path and offset")
    func outOfRange() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/s.bin"
        try writeBytes(pattern(100), to: path)
        let file = try MappedFile(path: path)
        let past = try #require(caught { _ = try file.withBytes(at: 90, count: 11) { $0.count } })
        #expect(past is IOError)
        #expect(
            String(describing: past)
                == "cannot read '\(path)' (mapped file ends at byte 100, 11 bytes needed from offset 90)")
        let beyond = try #require(caught { _ = try file.withBytes(at: 101, count: 0) { $0.count } })
        #expect(
            String(describing: beyond)
                == "cannot read '\(path)' (mapped file ends at byte 100, 0 bytes needed from offset 101)")
        let huge = try #require(caught { _ = try file.withBytes(at: Int64.max, count: 1) { $0.count } })
        #expect(
            String(describing: huge)
                == "cannot read '\(path)' (mapped file ends at byte 100, 1 bytes needed from offset \(Int64.max))")
        let negative = try #require(caught { _ = try file.withBytes(at: -1, count: 1) { $0.count } })
        #expect(String(describing: negative) == "cannot read '\(path)' (negative byte offset -1)")
        var buffer = [UInt8](repeating: 0, count: 4)
        let negativeRead = try #require(
            caught { _ = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: -5) } })
        #expect(String(describing: negativeRead) == "cannot read '\(path)' (negative byte offset -5)")
        // The range ending exactly at the end is fine, as is an empty range there.
        #expect(try file.withBytes(at: 90, count: 10) { Array($0) } == Array(pattern(100)[90...]))
        #expect(try file.withBytes(at: 100, count: 0) { $0.count } == 0)
    }

    @Test("errors opening: missing file, directory")
    func openErrors() throws {
        let dir = try TemporaryDirectory()
        let missing = try #require(caught { _ = try MappedFile(path: dir.path + "/nope") })
        #expect(
            String(describing: missing)
                == "cannot open '\(dir.path)/nope': No such file or directory (errno 2)")
        let directory = try #require(caught { _ = try MappedFile(path: dir.path) })
        #expect(String(describing: directory) == "cannot map '\(dir.path)' (not a regular file)")
    }

    @Test("a 0-byte file maps nothing and reads nothing")
    func emptyFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/empty.bin"
        try writeBytes([], to: path)
        let file = try MappedFile(path: path)
        #expect(file.byteCount == 0)
        #expect(try file.withBytes(at: 0, count: 0) { $0.count } == 0)
        let error = try #require(caught { _ = try file.withBytes(at: 0, count: 1) { $0.count } })
        #expect(
            String(describing: error)
                == "cannot read '\(path)' (mapped file ends at byte 0, 1 bytes needed from offset 0)")
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: 0) } == 0)
        file.advise(.random)
        file.advise(.willNeed(offset: 0, count: 10))
    }

    @Test("advice of every kind, in and out of range, does not disturb reads")
    func advise() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/s.bin"
        let bytes = pattern(10_000, seed: 3)
        try writeBytes(bytes, to: path)
        let file = try MappedFile(path: path)
        file.advise(.random)
        file.advise(.sequential)
        for (offset, count) in [(0, 10_000), (1, 1), (4097, 5000), (9999, 100), (10_000, 1), (-4, 8), (5, 0), (5, -1)] {
            file.advise(.willNeed(offset: Int64(offset), count: count))
        }
        #expect(try file.withBytes(at: 4097, count: 5000) { Array($0) } == Array(bytes[4097..<9097]))
    }
}

/// A value the cache tests open: records which shard it was opened for and counts releases.
private final class FakeShard: Sendable {
    let id: Int64
    let payload: [UInt8]
    let counters: Counters

    init(id: Int64, counters: Counters) {
        self.id = id
        self.payload = pattern(64, seed: Int(id))
        self.counters = counters
    }

    deinit { counters.released.add(1, ordering: .relaxed) }
}

/// Counters shared between a test and the cache's open closure.
private final class Counters: Sendable {
    let opens = Atomic<Int>(0)
    let released = Atomic<Int>(0)
    let maxCount = Atomic<Int>(0)
}

@Suite("ShardFileCache: a bounded LRU of open shards")
struct ShardFileCacheTests {
    @Test("capacity 3 over 10 shard ids from 8 threads: correct values, bounded, evictions counted")
    func concurrent() async throws {
        let counters = Counters()
        let cache = ShardFileCache<FakeShard>(capacity: 3) { id in
            counters.opens.add(1, ordering: .relaxed)
            return FakeShard(id: id, counters: counters)
        }
        try await withThrowingTaskGroup(of: Int.self) { group in
            for thread in 0..<8 {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(thread))
                    var bad = 0
                    for _ in 0..<2000 {
                        let id = Int64(rng.next() % 10)
                        let shard = try cache.value(for: id)
                        if shard.id != id || shard.payload != pattern(64, seed: Int(id)) { bad += 1 }
                        let count = cache.count
                        counters.maxCount.max(count, ordering: .relaxed)
                    }
                    return bad
                }
            }
            var bad = 0
            for try await b in group { bad += b }
            #expect(bad == 0)
        }
        #expect(counters.maxCount.load(ordering: .relaxed) <= 3)
        #expect(cache.count == 3)
        let opens = counters.opens.load(ordering: .relaxed)
        #expect(cache.evictions > 0)
        // Every open either stayed cached, was evicted, or lost a race to open the same id.
        #expect(cache.evictions + cache.count <= opens)
        // Nothing the cache no longer holds is kept alive by it.
        #expect(counters.released.load(ordering: .relaxed) == opens - cache.count)
    }

    @Test("sequential use: hits do not reopen, the least recently used is evicted")
    func lruOrder() throws {
        let counters = Counters()
        let cache = ShardFileCache<FakeShard>(capacity: 3) { id in
            counters.opens.add(1, ordering: .relaxed)
            return FakeShard(id: id, counters: counters)
        }
        for id: Int64 in [1, 2, 3, 1, 2, 3] { _ = try cache.value(for: id) }
        #expect(counters.opens.load(ordering: .relaxed) == 3)
        #expect(cache.evictions == 0)
        _ = try cache.value(for: 1)  // 1 is now the most recently used; 2 is the oldest
        _ = try cache.value(for: 4)  // evicts 2
        #expect(cache.evictions == 1)
        #expect(cache.count == 3)
        _ = try cache.value(for: 1)
        _ = try cache.value(for: 3)
        #expect(counters.opens.load(ordering: .relaxed) == 4)
        _ = try cache.value(for: 2)  // reopened, evicts 4
        #expect(counters.opens.load(ordering: .relaxed) == 5)
        #expect(cache.evictions == 2)
        _ = try cache.value(for: 4)
        #expect(counters.opens.load(ordering: .relaxed) == 6)
    }

    @Test("a value held by a caller survives eviction and is released when dropped")
    func heldValueSurvives() throws {
        let counters = Counters()
        let cache = ShardFileCache<FakeShard>(capacity: 1) { id in
            FakeShard(id: id, counters: counters)
        }
        var held: FakeShard? = try cache.value(for: 7)
        _ = try cache.value(for: 8)  // evicts 7 from the cache
        #expect(cache.evictions == 1)
        #expect(counters.released.load(ordering: .relaxed) == 0)
        #expect(held?.id == 7)
        #expect(held?.payload == pattern(64, seed: 7))
        held = nil
        #expect(counters.released.load(ordering: .relaxed) == 1)
    }

    @Test("a held mapping stays readable after eviction")
    func heldMappingSurvives() throws {
        let dir = try TemporaryDirectory()
        let paths = (0..<3).map { dir.path + "/shard-\($0).bin" }
        for (i, p) in paths.enumerated() { try writeBytes(pattern(5000, seed: i), to: p) }
        let cache = ShardFileCache<MappedFile>(capacity: 1) { id in try MappedFile(path: paths[Int(id)]) }
        let first = try cache.value(for: 0)
        _ = try cache.value(for: 1)
        _ = try cache.value(for: 2)
        #expect(cache.evictions == 2)
        #expect(try first.withBytes(at: 0, count: 5000) { Array($0) } == pattern(5000, seed: 0))
    }

    @Test("a failed open caches nothing and rethrows")
    func openFailure() throws {
        let dir = try TemporaryDirectory()
        let cache = ShardFileCache<MappedFile>(capacity: 2) { id in try MappedFile(path: dir.path + "/\(id).tar") }
        let error = try #require(caught { _ = try cache.value(for: 4) })
        #expect(
            String(describing: error) == "cannot open '\(dir.path)/4.tar': No such file or directory (errno 2)")
        #expect(cache.count == 0)
        #expect(cache.evictions == 0)
    }

    @Test("the default capacity is within 8...1024 and within the process limits")
    func defaultCapacity() throws {
        let capacity = ShardFileCache<MappedFile>.defaultCapacity()
        #expect(capacity >= 8)
        #expect(capacity <= 1024)
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        if limit.rlim_cur / 4 >= 8 { #expect(UInt64(capacity) <= limit.rlim_cur / 4) }
        if let text = try? String(contentsOfFile: "/proc/sys/vm/max_map_count", encoding: .utf8),
            let maps = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), maps / 4 >= 8
        {
            #expect(capacity <= maps / 4)
        }
    }
}

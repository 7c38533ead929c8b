import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import Synchronization

/// The selection's bytes in RAM: one buffer per shard, freed with the dataset.
final class Arenas: @unchecked Sendable {
    let buffers: [UnsafeMutableRawBufferPointer]

    init(_ buffers: [UnsafeMutableRawBufferPointer]) { self.buffers = buffers }

    deinit { for b in buffers { b.deallocate() } }

    /// The byte at `offset` of shard `shard`'s buffer.
    @inline(__always)
    func pointer(shard: Int, offset: Int64) -> UnsafeRawPointer {
        UnsafeRawPointer(buffers[shard].baseAddress! + Int(offset))
    }
}

/// Reads a table's selection into RAM for the `memory` strategy.
enum Preload {
    /// Reads fewer, larger pieces: members closer than this are read together with the gap.
    static let gapLimit: Int64 = 64 << 10
    /// The largest read into the staging buffer; a member larger than this is read directly.
    static let window = 8 << 20

    /// Reads every member of `table` into per-shard buffers, shards in parallel (on
    /// ``ParallelLoop`` threads, never Dispatch: a forked child may preload too), and rewrites each
    /// member's offset to its place in its shard's buffer. With `verifiesHeaders`, each member's
    /// own tar header is read with it (the reads start 512 bytes earlier; the headers of the
    /// next members lie in the gaps read anyway) and checked; the RAM copy is not checked again.
    ///
    /// - Throws: ``MemberHeaderError`` when a header does not match; ``ShardChangedError``;
    ///   `IOError` naming the shard and offset when a read fails or a shard is shorter than the
    ///   index says. Nothing stays allocated then.
    /// - Complexity: one pass over the selected bytes, mostly in reads of up to 8 MiB.
    static func load(
        _ table: LocationTable, from files: ShardFiles<ReadOnlyFile>, compressed: CompressedShards? = nil,
        verifiesHeaders: Bool = true
    ) throws -> Arenas {
        let shardCount = files.records.count
        // Member numbers grouped by shard, each group in file order.
        var bytes = [Int](repeating: 0, count: shardCount)
        var starts = [Int](repeating: 0, count: shardCount + 1)
        for (i, m) in table.members.enumerated() {
            starts[Int(m.shard) + 1] += 1
            bytes[Int(m.shard)] += Int(table.length(ofMember: i))
        }
        for s in 0..<shardCount { starts[s + 1] += starts[s] }
        var order = [Int](repeating: 0, count: table.members.count)
        var next = Array(starts.dropLast())
        for (i, m) in table.members.enumerated() {
            order[next[Int(m.shard)]] = i
            next[Int(m.shard)] += 1
        }
        let lengths = table.members.indices.map { table.length(ofMember: $0) }
        let offsets = table.members.map(\.offset)
        for s in 0..<shardCount { order[starts[s]..<starts[s + 1]].sort { offsets[$0] < offsets[$1] } }

        let buffers = bytes.map { UnsafeMutableRawBufferPointer.allocate(byteCount: max($0, 1), alignment: 64) }
        let arenas = Arenas(buffers)
        var newOffsets = [Int64](repeating: 0, count: table.members.count)
        let failure = Mutex<(any Error)?>(nil)
        try newOffsets.withUnsafeMutableBufferPointer { placed in
            nonisolated(unsafe) let placed = placed
            let run: @Sendable (Int) -> Void = { [order, starts, lengths, offsets] s in
                guard starts[s] < starts[s + 1], failure.withLock({ $0 == nil }) else { return }
                do {
                    try loadShard(
                        files, s, compressed?.infos[s], order[starts[s]..<starts[s + 1]], offsets, lengths,
                        into: arenas.buffers[s], placed: placed, checking: verifiesHeaders ? table : nil)
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
            ParallelLoop.run(iterations: shardCount, run)
            if let error = failure.withLock({ $0 }) { throw error }
        }
        for i in table.members.indices { table.members[i].offset = newOffsets[i] }
        return arenas
    }

    /// Reads shard `s`'s members (`members`, in file order) into `arena`, recording where each
    /// went; with `checking` (the table, still holding shard offsets), checks each member's header.
    ///
    /// A compressed shard (`compressed`) is read through one front-to-back decompression: the
    /// members come in file order.
    private static func loadShard(
        _ files: ShardFiles<ReadOnlyFile>, _ s: Int, _ compressed: CompressedShards.Shard?, _ members: ArraySlice<Int>,
        _ offsets: [Int64], _ lengths: [Int64], into arena: UnsafeMutableRawBufferPointer,
        placed: UnsafeMutableBufferPointer<Int64>, checking table: LocationTable?
    ) throws {
        let file = try files.file(s)
        let record = files.records[s]
        var stream: DecompressingReader? = nil
        if let compressed {
            do { stream = try DecompressingReader(file: file, format: compressed.format) } catch {
                throw CompressedShardError(shard: compressed, error)
            }
        }
        func readExactly(
            _ file: ReadOnlyFile, _ record: ShardRecord, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64
        ) throws {
            guard let stream, let compressed else {
                return try Preload.readExactly(file, record, into: buffer, at: offset)
            }
            let n: Int
            do { n = try stream.read(into: buffer, at: offset) } catch {
                throw CompressedShardError(shard: compressed, error)
            }
            if n < buffer.count {
                throw CompressedShardError(
                    path: record.path,
                    detail:
                        "the shard's tar ends at byte \(offset + Int64(n)) but \(buffer.count) bytes are needed from offset \(offset)",
                    isSeekTable: false)
            }
        }
        let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: window, alignment: 64)
        defer { staging.deallocate() }
        let header = table == nil ? 0 : Int64(MemberHeaderCheck.blockSize)
        func check(_ m: Int, _ block: UnsafeRawPointer) throws {
            guard let table else { return }
            try table.keyBytes.withUnsafeBytes { keys in
                let p = table.position(ofMember: m)
                let key = UnsafeRawBufferPointer(rebasing: keys[Int(table.keyStarts[p])..<Int(table.keyStarts[p + 1])])
                let row = table.members[m]
                try MemberHeaderError.check(
                    block, row, length: Int(lengths[m]), key: key, ext: table.extensionNames[row.ext],
                    shardPath: files.paths[s])
            }
        }
        var at = 0
        var i = members.startIndex
        while i < members.endIndex {
            let first = members[i]
            let start = offsets[first]
            if lengths[first] + header >= Int64(window) {
                // A large member: its header into the staging buffer, its data straight into the arena.
                if header > 0 {
                    let block = UnsafeMutableRawBufferPointer(rebasing: staging[0..<Int(header)])
                    try readExactly(file, record, into: block, at: start - header)
                    try check(first, UnsafeRawPointer(block.baseAddress!))
                }
                let count = Int(lengths[first])
                try readExactly(
                    file, record, into: UnsafeMutableRawBufferPointer(rebasing: arena[at..<(at + count)]), at: start)
                placed[first] = Int64(at)
                at += count
                i += 1
                continue
            }
            // A window of nearby members, from the first one's header: one read, then copies.
            let readStart = start - header
            var j = i + 1
            var end = start + lengths[first]
            while j < members.endIndex {
                let m = members[j]
                let mEnd = offsets[m] + lengths[m]
                guard offsets[m] - end <= gapLimit, mEnd - readStart <= Int64(window) else { break }
                end = max(end, mEnd)
                j += 1
            }
            let span = Int(end - readStart)
            try readExactly(
                file, record, into: UnsafeMutableRawBufferPointer(rebasing: staging[0..<span]), at: readStart)
            for k in i..<j {
                let m = members[k]
                let count = Int(lengths[m])
                let from = Int(offsets[m] - readStart)
                if header > 0 { try check(m, UnsafeRawPointer(staging.baseAddress! + from - Int(header))) }
                UnsafeMutableRawBufferPointer(rebasing: arena[at..<(at + count)]).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: staging[from..<(from + count)]))
                placed[m] = Int64(at)
                at += count
            }
            i = j
        }
    }

    private static func readExactly(
        _ file: ReadOnlyFile, _ record: ShardRecord, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64
    ) throws {
        let n = try file.readAll(into: buffer, at: offset)
        if n < buffer.count {
            throw ShardCheck.shortRead(
                file.path, size: offset + Int64(n), offset: offset, buffer.count, since: "it was checked")
        }
    }
}

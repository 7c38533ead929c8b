import Dispatch
import ShardCore
import ShardIO
import ShardTestSupport
import Synchronization
import Testing

@testable import ShardCompression

/// gzip shards written by gzip, pigz and `cat`: a whole pass, checkpoints, random reads, and
/// damaged files refused at the right compressed offset.
@Suite("gzip: pass, checkpoints, random reads, damage")
struct GzipTests {
    let fixture: CompressionFixture
    let original: [UInt8]

    init() throws {
        fixture = try CompressionFixture()
        original = CompressionFixture.data(6 << 20, seed: 1)
    }

    private func offsets(_ info: CompressedShardInfo) -> [Int64] {
        info.seekTable.points.map(\.uncompressedOffset)
    }

    @Test("gzip -6: a whole pass gives the bytes back; checkpoints every span or more, under 5% of the file")
    func wholePass() throws {
        let path = try fixture.compressed(original, "gzip -c -6", name: "a.tar.gz")
        let (bytes, info) = try CompressionFixture.pass(path, .gzip)
        #expect(bytes == original)
        #expect(info.format == .gzip)
        #expect(info.uncompressedSize == Int64(original.count))
        #expect(info.compressedSize == Int64(try CompressionFixture.read(path).count))
        let points = info.seekTable.points
        #expect(points.count >= 4)
        #expect(points[0].isMemberStart && points[0].compressedOffset == 0)
        for (a, b) in zip(points, points.dropFirst()) {
            #expect(b.uncompressedOffset - a.uncompressedOffset >= 256 << 10)
        }
        #expect(points.dropFirst().allSatisfy { !$0.isMemberStart && $0.windowLength == 32768 })
        #expect(points.contains { $0.windowCoding == .zstd })
        #expect(points.contains { $0.bits != 0 })
        #expect(info.seekTable.isSeekable)
        let stored = info.seekTable.serialized()
        #expect(stored.count * 20 <= Int(info.compressedSize))
    }

    @Test("random reads through checkpoints: before, at and after each, across several, at the end")
    func randomReads() throws {
        let path = try fixture.compressed(original, "gzip -c -9", name: "a.tar.gz")
        let (_, info) = try CompressionFixture.pass(path, .gzip)
        let decoded = CompressedShardInfo(seekTable: try info.seekTable.roundTripped())
        #expect(decoded == info)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: decoded)
        try CompressionFixture.checkRandomReads(reader, original, points: offsets(info))
    }

    @Test("a front-to-back pass of small reads through SeekableReader")
    func frontToBack() throws {
        let path = try fixture.compressed(original, "gzip -c -1", name: "a.tar.gz")
        let (_, info) = try CompressionFixture.pass(path, .gzip)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
        #expect(try CompressionFixture.frontToBack(reader, size: info.uncompressedSize) == original)
    }

    @Test("one SeekableReader shared by four threads: every read right")
    func sharedBetweenThreads() throws {
        let path = try fixture.compressed(original, "gzip -c", name: "a.tar.gz")
        let (_, info) = try CompressionFixture.pass(path, .gzip)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
        let original = self.original
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            var rng = SplitMix64(seed: UInt64(thread))
            var position = Int64(rng.next(below: UInt64(original.count)))
            for i in 0..<150 {
                // Runs of consecutive reads (which continue a cursor) and jumps.
                if i % 10 == 0 { position = Int64(rng.next(below: UInt64(original.count))) }
                let count = Int(rng.next(below: 20_000)) + 1
                let got = try? CompressionFixture.read(reader, at: position, count: count)
                let end = min(original.count, Int(position) + count)
                if got != Array(original[Int(position)..<end]) { failures.withLock { $0 += 1 } }
                position = Int64(end) % Int64(original.count)
            }
        }
        #expect(failures.withLock { $0 } == 0)
    }

    @Test("DecodedSpans: reads right around every checkpoint, in a locality-aware order, under the capacity")
    func decodedSpans() throws {
        let path = try fixture.compressed(original, "gzip -c -6", name: "a.tar.gz")
        let (_, info) = try CompressionFixture.pass(path, .gzip)  // a checkpoint every 256 KiB or so
        // 4 MiB: spans up to 512 KiB are kept, about ten at a time, so entries are evicted.
        let spans = DecodedSpans(capacity: 4 << 20)
        #expect(spans.largestSpan == 512 << 10)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info, spans: spans)
        try CompressionFixture.checkRandomReads(reader, original, points: offsets(info))
        #expect(spans.bytesHeld > 0 && spans.bytesHeld <= spans.capacity)
        // The loader's locality-aware order: windows of 600 KiB of 4 KiB reads, shuffled, each
        // window read three times (its spans copied back, extended, or decoded anew).
        var rng = SplitMix64(seed: 3)
        let read = 4096
        for window in stride(from: 0, to: original.count, by: 600 << 10) {
            var starts = Array(stride(from: window, to: min(window + (600 << 10), original.count), by: read))
            for _ in 0..<3 {
                for i in stride(from: starts.count - 1, to: 0, by: -1) {
                    starts.swapAt(i, Int(rng.next(below: UInt64(i + 1))))
                }
                for start in starts {
                    let got = try CompressionFixture.read(reader, at: Int64(start), count: read)
                    #expect(got == Array(original[start..<min(start + read, original.count)]), "at \(start)")
                }
            }
        }
        #expect(spans.bytesHeld <= spans.capacity)
        // Spans over the limit are read straight through.
        let small = DecodedSpans(capacity: 1 << 20)
        #expect(small.largestSpan == 128 << 10)
        let direct = SeekableReader(file: try ReadOnlyFile(path: path), info: info, spans: small)
        try CompressionFixture.checkRandomReads(direct, original, points: offsets(info))
        #expect(small.bytesHeld == 0)
    }

    @Test("DecodedSpans shared by two readers and four threads: every read right")
    func decodedSpansSharedBetweenThreads() throws {
        let first = try fixture.compressed(original, "gzip -c", name: "a.tar.gz")
        let reversed = Array(original.reversed())
        let second = try fixture.compressed(reversed, "gzip -c -1", name: "b.tar.gz")
        let spans = DecodedSpans(capacity: 3 << 20)
        let readers = [
            (
                SeekableReader(
                    file: try ReadOnlyFile(path: first), info: try CompressionFixture.pass(first, .gzip).1, spans: spans
                ), original
            ),
            (
                SeekableReader(
                    file: try ReadOnlyFile(path: second), info: try CompressionFixture.pass(second, .gzip).1,
                    spans: spans), reversed
            ),
        ]
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            var rng = SplitMix64(seed: UInt64(thread) + 11)
            for i in 0..<200 {
                let (reader, data) = readers[(thread + i) % 2]
                // Mostly near the start (spans read again and again), sometimes anywhere.
                let range = i % 4 == 0 ? data.count : 1 << 20
                let position = Int(rng.next(below: UInt64(range)))
                let count = Int(rng.next(below: 30_000)) + 1
                let got = try? CompressionFixture.read(reader, at: Int64(position), count: count)
                if got != Array(data[position..<min(data.count, position + count)]) {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(spans.bytesHeld <= spans.capacity)
    }

    @Test("several members (cat a.gz b.gz c.gz): one pass, reads across member boundaries")
    func multipleMembers() throws {
        let cuts = [0, 1_000_003, 1_000_500, 4_200_000, original.count]
        let pieces = zip(cuts, cuts.dropFirst()).map { Array(original[$0..<$1]) }
        let path = try fixture.concatenated(pieces, "gzip -c", name: "cat.tar.gz")
        let (bytes, info) = try CompressionFixture.pass(path, .gzip)
        #expect(bytes == original)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
        try CompressionFixture.checkRandomReads(
            reader, original, points: offsets(info) + cuts.dropFirst().dropLast().map { Int64($0) })
        // A read from the last checkpoint before a boundary across it.
        for cut in cuts.dropFirst().dropLast() {
            let got = try CompressionFixture.read(reader, at: Int64(cut) - 3000, count: 6000)
            #expect(got == Array(original[(cut - 3000)..<(cut + 3000)]))
        }
        #expect(try CompressionFixture.frontToBack(reader, size: info.uncompressedSize, readSize: 65536) == original)
    }

    @Test("many small members of very compressible data: the table stays under 5%, reads stay right")
    func manySmallMembers() throws {
        var data: [UInt8] = []
        var pieces: [[UInt8]] = []
        for i in 0..<60 {
            let piece = [UInt8](repeating: UInt8(i), count: 70_000) + CompressionFixture.data(500, seed: UInt64(i))
            pieces.append(piece)
            data += piece
        }
        let path = try fixture.concatenated(pieces, "gzip -c -9", name: "small.tar.gz")
        let (bytes, info) = try CompressionFixture.pass(path, .gzip, span: 64 << 10)
        #expect(bytes == data)
        #expect(info.seekTable.serialized().count * 20 <= Int(info.compressedSize))
        #expect(info.seekTable.pointCount > 1)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
        try CompressionFixture.checkRandomReads(reader, data, points: offsets(info))
    }

    @Test("pigz output (and pigz -i, independent blocks) reads back whole and at random")
    func pigz() throws {
        for command in ["pigz -c -p 2", "pigz -c -i -p 2 -b 128"] {
            let path = try fixture.compressed(original, command, name: "p.tar.gz")
            let (bytes, info) = try CompressionFixture.pass(path, .gzip)
            #expect(bytes == original)
            let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
            try CompressionFixture.checkRandomReads(reader, original, points: offsets(info))
        }
    }

    @Test("zero padding after the last member is accepted; other trailing bytes are refused where they start")
    func trailingBytes() throws {
        let gz = try CompressionFixture.read(try fixture.compressed(original, "gzip -c", name: "a.tar.gz"))
        let padded = try fixture.file(gz + [UInt8](repeating: 0, count: 10000), name: "padded.tar.gz")
        let (bytes, info) = try CompressionFixture.pass(padded, .gzip)
        #expect(bytes == original)
        #expect(info.compressedSize == Int64(gz.count + 10000))
        for tail: [UInt8] in [[0, 0, 0, 1], [0x41], [0x1f]] {
            let path = try fixture.file(gz + tail, name: "garbage.tar.gz")
            #expect(
                try CompressionFixture.passError(path, .gzip)
                    == DecompressionError(
                        format: .gzip, path: path, compressedOffset: Int64(gz.count), kind: .trailingGarbage))
        }
    }

    @Test("a truncated file is refused at the offset where the input ends")
    func truncated() throws {
        let gz = try CompressionFixture.read(try fixture.compressed(original, "gzip -c", name: "a.tar.gz"))
        for cut in [1, 2, 10, gz.count / 2, gz.count - 8, gz.count - 1] {
            let path = try fixture.file(Array(gz[0..<cut]), name: "cut.tar.gz")
            #expect(
                try CompressionFixture.passError(path, .gzip)
                    == DecompressionError(format: .gzip, path: path, compressedOffset: Int64(cut), kind: .truncated))
        }
    }

    @Test("a damaged trailer names the CRC or the length at its offset; damaged data is refused")
    func corrupt() throws {
        let gz = try CompressionFixture.read(try fixture.compressed(original, "gzip -c", name: "a.tar.gz"))
        var badCRC = gz
        badCRC[gz.count - 8] ^= 1
        let crcPath = try fixture.file(badCRC, name: "crc.tar.gz")
        #expect(
            try CompressionFixture.passError(crcPath, .gzip)
                == DecompressionError(
                    format: .gzip, path: crcPath, compressedOffset: Int64(gz.count - 8),
                    kind: .corrupt("CRC-32 mismatch in the gzip member's trailer (incorrect data check)")))
        var badLength = gz
        badLength[gz.count - 2] ^= 1
        let lengthPath = try fixture.file(badLength, name: "length.tar.gz")
        #expect(
            try CompressionFixture.passError(lengthPath, .gzip)
                == DecompressionError(
                    format: .gzip, path: lengthPath, compressedOffset: Int64(gz.count - 4),
                    kind: .corrupt("length mismatch in the gzip member's trailer (incorrect length check)")))
        // A flipped byte inside the deflate data: refused (by inflate or by the CRC), never passed.
        var rng = SplitMix64(seed: 3)
        for _ in 0..<8 {
            var damaged = gz
            let at = 20 + Int(rng.next(below: UInt64(gz.count - 40)))
            damaged[at] ^= 0x10
            let path = try fixture.file(damaged, name: "flip.tar.gz")
            let error = try #require(try CompressionFixture.passError(path, .gzip))
            guard case .corrupt = error.kind else {
                Issue.record("flip at \(at): \(error)")
                continue
            }
            #expect(error.compressedOffset >= Int64(at) && error.compressedOffset <= Int64(gz.count))
        }
        let notGzip = try fixture.file([0x1f, 0x8c, 0, 0, 0, 0], name: "bad.tar.gz")
        #expect(try CompressionFixture.passError(notGzip, .gzip)?.kind == .corrupt("not a gzip header"))
    }

    @Test("the error reads as one line naming the shard, format, offset, cause and remedy")
    func errorText() {
        let error = DecompressionError(
            format: .gzip, path: "shard-000001.tar.gz", compressedOffset: 123456,
            kind: .corrupt("invalid distance too far back"))
        #expect(
            error.description
                == "shard-000001.tar.gz: gzip data is corrupt at compressed byte 123456 (invalid distance too far back); "
                + "the file is damaged: fetch or compress it again")
    }

    @Test("DecompressingReader: byteCount, reads ahead and within the window, behind it refused, endsEarly")
    func forwardReader() throws {
        let path = try fixture.compressed(original, "gzip -c", name: "a.tar.gz")
        let reader = try DecompressingReader(file: try ReadOnlyFile(path: path), format: .gzip, bufferSize: 256 << 10)
        #expect(reader.byteCount == .max)
        var buffer = [UInt8](repeating: 0, count: 1000)
        #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 3_000_000) } == 1000)
        #expect(buffer == Array(original[3_000_000..<3_001_000]))
        // Within the last 64 KiB produced.
        #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 3_001_000 - 60_000) } == 1000)
        #expect(buffer == Array(original[(3_001_000 - 60_000)..<(3_002_000 - 60_000)]))
        #expect(throws: DecompressionError.self) {
            try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: 100) }
        }
        var crc = CRC32C()
        var expected = CRC32C()
        original[4_000_000..<5_500_000].withUnsafeBytes { expected.update($0) }
        try reader.forEachPiece(offset: 4_000_000, count: 1_500_000) { crc.update($0) }
        #expect(crc == expected)
        #expect(reader.compressedBytesRead > 0)
        let size = Int64(original.count)
        do {
            try reader.forEachPiece(offset: size - 10, count: 20) { _ in }
            Issue.record("no error")
        } catch let error as DecompressionError {
            #expect(error.kind == .endsEarly(needed: size + 10, end: size))
        }
        #expect(reader.byteCount == size)
        #expect(try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: size - 10) } == 10)
        let info = try reader.finish()
        #expect(info.uncompressedSize == size)
    }

    @Test("TarScanner reads a .tar.gz through DecompressingReader, then through SeekableReader")
    func tarScanner() throws {
        var tar = TarWriter()
        var expected: [(name: String, crc: UInt32)] = []
        for i in 0..<40 {
            let data = CompressionFixture.data(1000 + i * 37_000, seed: UInt64(i))
            var crc = CRC32C()
            data.withUnsafeBytes { crc.update($0) }
            tar.addFile("\(i).bin", data)
            expected.append(("\(i).bin", crc.value))
        }
        tar.finish()
        let path = try fixture.compressed(tar.bytes, "gzip -c", name: "t.tar.gz")
        let reader = try DecompressingReader(file: try ReadOnlyFile(path: path), format: .gzip)
        var scanner = TarScanner(reader)
        var names: [String] = []
        while let entry = try scanner.next() {
            names.append(String(decoding: entry.name, as: UTF8.self))
            var crc = CRC32C()
            try reader.forEachPiece(offset: entry.dataOffset, count: entry.size) { crc.update($0) }
            #expect(crc.value == expected[names.count - 1].crc)
        }
        #expect(names == expected.map(\.name))
        let info = try reader.finish()
        // And at random, through a SeekableReader as RandomAccessBytes.
        var again = TarScanner(SeekableReader(file: try ReadOnlyFile(path: path), info: info))
        var count = 0
        while let entry = try again.next() {
            #expect(String(decoding: entry.name, as: UTF8.self) == expected[count].name)
            count += 1
        }
        #expect(count == expected.count)
    }
}

import ShardCore
import ShardIO
import Testing

@testable import ShardCompression

/// zstd, xz and bzip2 shards written by the real tools: frames, skippable frames, blocks,
/// streams, padding, and damaged files.
@Suite("zstd, xz, bzip2: frames, blocks, streams, damage")
struct ZstdXZBZip2Tests {
    let fixture: CompressionFixture
    let original: [UInt8]
    let cuts: [Int]

    init() throws {
        fixture = try CompressionFixture()
        original = CompressionFixture.data(3 << 20, seed: 2)
        cuts = [0, 700_001, 700_002, 1_900_000, original.count]
    }

    private var pieces: [[UInt8]] { zip(cuts, cuts.dropFirst()).map { Array(original[$0..<$1]) } }

    /// A skippable frame (magic 0x184D2A5`nibble`) holding `count` bytes.
    private func skippable(_ count: Int, nibble: UInt8 = 0) -> [UInt8] {
        [0x50 | nibble, 0x2a, 0x4d, 0x18] + withUnsafeBytes(of: UInt32(count).littleEndian) { Array($0) }
            + [UInt8](repeating: 0xee, count: count)
    }

    @Test("empty data in every format: a pass of 0 bytes, a table that survives its stored form")
    func emptyData() throws {
        for (command, format) in [
            ("gzip -c", CompressionFormat.gzip), ("zstd -c -q", .zstd), ("xz -c", .xz), ("bzip2 -c", .bzip2),
        ] {
            let path = try fixture.compressed([], command, name: "empty")
            let (bytes, info) = try CompressionFixture.pass(path, format)
            #expect(bytes.isEmpty && info.uncompressedSize == 0)
            #expect(try info.seekTable.roundTripped() == info.seekTable)
            if info.seekTable.isSeekable {
                let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
                #expect(try CompressionFixture.read(reader, at: 0, count: 10) == [])
            }
        }
        let nothing = try fixture.file([], name: "zero-bytes")
        for format in [CompressionFormat.gzip, .zstd, .xz, .bzip2] {
            #expect(
                try CompressionFixture.passError(nothing, format)
                    == DecompressionError(format: format, path: nothing, compressedOffset: 0, kind: .truncated))
        }
    }

    @Test("zstd, one frame: a whole pass, not seekable")
    func zstdOneFrame() throws {
        let path = try fixture.compressed(original, "zstd -c -q --content-size", name: "a.tar.zst")
        let (bytes, info) = try CompressionFixture.pass(path, .zstd)
        #expect(bytes == original)
        #expect(info.seekTable.pointCount == 0 && !info.seekTable.isSeekable)
        #expect(try info.seekTable.roundTripped() == info.seekTable)
    }

    @Test("zstd, several frames with skippable frames first and between: frame table, random reads")
    func zstdFrames() throws {
        var file = skippable(100, nibble: 0xf)
        for (i, piece) in pieces.enumerated() {
            file += try CompressionFixture.read(try fixture.compressed(piece, "zstd -c -q --check", name: "p.zst"))
            if i == 1 { file += skippable(0) + skippable(7, nibble: 3) }
        }
        let path = try fixture.file(file, name: "frames.tar.zst")
        #expect(file.withUnsafeBytes { CompressionFormat.detect($0) } == .zstd)
        let (bytes, info) = try CompressionFixture.pass(path, .zstd, readSize: 4096)
        #expect(bytes == original)
        // Four data frames; the one after the one-byte frame (700_001..700_002) starts too close
        // to it to be worth an entry (5% rule): reads decode through the small frame.
        #expect(info.seekTable.points.map(\.uncompressedOffset) == [0, 700_001, 1_900_000])
        #expect(info.seekTable.points[0].compressedOffset == 108)
        #expect(info.seekTable.isSeekable)
        let table = try info.seekTable.roundTripped()
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: CompressedShardInfo(seekTable: table))
        try CompressionFixture.checkRandomReads(reader, original, points: cuts.dropLast().map { Int64($0) })
        #expect(try CompressionFixture.frontToBack(reader, size: info.uncompressedSize) == original)
    }

    @Test("zstd of 384 KiB pieces concatenated (a frame each): a frame table, random reads")
    func zstdManyFrames() throws {
        // zstd's CLI writes one frame per input; several frames come from concatenating its
        // outputs, as the seekable-format producers do.
        let size = 384 << 10
        let chunks = stride(from: 0, to: original.count, by: size).map {
            Array(original[$0..<min($0 + size, original.count)])
        }
        let path = try fixture.concatenated(chunks, "zstd -c -q -1", name: "many.tar.zst")
        let (bytes, info) = try CompressionFixture.pass(path, .zstd)
        #expect(bytes == original)
        #expect(info.seekTable.pointCount == chunks.count)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
        try CompressionFixture.checkRandomReads(
            reader, original, points: info.seekTable.points.map(\.uncompressedOffset))
        // The same through kept frames (each frame a span of 384 KiB; about ten kept).
        let spans = DecodedSpans(capacity: 4 << 20)
        let kept = SeekableReader(file: try ReadOnlyFile(path: path), info: info, spans: spans)
        try CompressionFixture.checkRandomReads(
            kept, original, points: info.seekTable.points.map(\.uncompressedOffset))
        #expect(try CompressionFixture.frontToBack(kept, size: info.uncompressedSize) == original)
        #expect(spans.bytesHeld > 0 && spans.bytesHeld <= spans.capacity)
    }

    @Test("zstd: truncated, trailing garbage, a damaged frame")
    func zstdDamage() throws {
        let zst = try CompressionFixture.read(try fixture.compressed(original, "zstd -c -q --check", name: "a.zst"))
        for cut in [2, 10, zst.count / 2, zst.count - 1] {
            let path = try fixture.file(Array(zst[0..<cut]), name: "cut.zst")
            #expect(
                try CompressionFixture.passError(path, .zstd)
                    == DecompressionError(format: .zstd, path: path, compressedOffset: Int64(cut), kind: .truncated))
        }
        let garbage = try fixture.file(zst + [1, 2, 3, 4, 5], name: "garbage.zst")
        #expect(
            try CompressionFixture.passError(garbage, .zstd)
                == DecompressionError(
                    format: .zstd, path: garbage, compressedOffset: Int64(zst.count), kind: .trailingGarbage))
        var damaged = zst
        damaged[zst.count - 2] ^= 0xff  // in the content checksum
        let path = try fixture.file(damaged, name: "bad.zst")
        let error = try #require(try CompressionFixture.passError(path, .zstd))
        #expect(error.kind == .corrupt("Restored data doesn't match checksum"))
    }

    @Test("xz, one block: a whole pass, not seekable")
    func xzOneBlock() throws {
        let path = try fixture.compressed(original, "xz -c -1", name: "a.tar.xz")
        let (bytes, info) = try CompressionFixture.pass(path, .xz)
        #expect(bytes == original)
        #expect(!info.seekTable.isSeekable)
    }

    @Test("xz with 256 KiB blocks: block table, random reads, a front-to-back pass")
    func xzBlocks() throws {
        let path = try fixture.compressed(original, "xz -c -1 --block-size=256KiB", name: "b.tar.xz")
        let (bytes, info) = try CompressionFixture.pass(path, .xz)
        #expect(bytes == original)
        #expect(info.seekTable.pointCount == 12)
        let offsets = info.seekTable.points.map(\.uncompressedOffset)
        #expect(offsets == (0..<12).map { Int64($0) << 18 })
        let reader = SeekableReader(
            file: try ReadOnlyFile(path: path), info: CompressedShardInfo(seekTable: try info.seekTable.roundTripped()))
        try CompressionFixture.checkRandomReads(reader, original, points: offsets)
        #expect(try CompressionFixture.frontToBack(reader, size: info.uncompressedSize) == original)
    }

    @Test("xz -T2 (multi-threaded, 3 MiB blocks with their sizes in the headers): random reads in every block")
    func xzThreaded() throws {
        let data = CompressionFixture.data(10 << 20, seed: 9)
        let path = try fixture.compressed(data, "xz -c -1 -T2", name: "t.tar.xz")
        let (bytes, info) = try CompressionFixture.pass(path, .xz)
        #expect(bytes == data)
        #expect(info.seekTable.points.map(\.uncompressedOffset) == [0, 3 << 20, 6 << 20, 9 << 20])
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
        try CompressionFixture.checkRandomReads(reader, data, points: info.seekTable.points.map(\.uncompressedOffset))
    }

    @Test("xz, several streams (xz then cat) with stream padding between: one pass, reads across streams")
    func xzStreams() throws {
        let path = try fixture.concatenated(
            pieces, "xz -c -1 --block-size=300KiB --check=sha256", name: "s.tar.xz", between: [0, 0, 0, 0, 0, 0, 0, 0])
        let (bytes, info) = try CompressionFixture.pass(path, .xz)
        #expect(bytes == original)
        #expect(info.seekTable.isSeekable)
        let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
        try CompressionFixture.checkRandomReads(
            reader, original,
            points: info.seekTable.points.map(\.uncompressedOffset) + cuts.dropLast().map { Int64($0) })
    }

    @Test("xz: truncated, padding not a multiple of 4, trailing garbage, a damaged block")
    func xzDamage() throws {
        let xz = try CompressionFixture.read(try fixture.compressed(original, "xz -c -1", name: "a.xz"))
        for cut in [3, 20, xz.count / 2, xz.count - 1] {
            let path = try fixture.file(Array(xz[0..<cut]), name: "cut.xz")
            #expect(
                try CompressionFixture.passError(path, .xz)
                    == DecompressionError(format: .xz, path: path, compressedOffset: Int64(cut), kind: .truncated))
        }
        let padded = try fixture.file(xz + [0, 0, 0, 0], name: "padded.xz")
        #expect(try CompressionFixture.pass(padded, .xz).0 == original)
        let oddPadding = try fixture.file(xz + [0, 0, 0], name: "odd.xz")
        #expect(
            try CompressionFixture.passError(oddPadding, .xz)
                == DecompressionError(
                    format: .xz, path: oddPadding, compressedOffset: Int64(xz.count + 3),
                    kind: .corrupt("stream padding of 3 bytes, not a multiple of 4")))
        let garbage = try fixture.file(xz + [0, 0, 0, 0, 9], name: "garbage.xz")
        #expect(
            try CompressionFixture.passError(garbage, .xz)
                == DecompressionError(
                    format: .xz, path: garbage, compressedOffset: Int64(xz.count + 4), kind: .trailingGarbage))
        var damaged = xz
        damaged[xz.count / 2] ^= 0x01
        let path = try fixture.file(damaged, name: "bad.xz")
        let error = try #require(try CompressionFixture.passError(path, .xz))
        #expect(error.kind == .corrupt("compressed data is corrupt (or a check does not match)"))
    }

    @Test("xz whose block header asks for a 4 GiB dictionary is refused, not allocated for")
    func xzHugeDictionary() throws {
        var xz = try CompressionFixture.read(
            try fixture.compressed(Array(original[0..<1000]), "xz -c -0", name: "a.xz"))
        // Stream header (12 bytes), then the block header: size 02, flags 00, filter 21 01 DICT,
        // padding 00 00 00, CRC-32.
        #expect(Array(xz[12..<16]) == [0x02, 0x00, 0x21, 0x01])
        xz[16] = 40
        let crc = Array(xz[12..<20]).withUnsafeBytes { Zlib.crc32(0, $0) }
        xz.replaceSubrange(20..<24, with: withUnsafeBytes(of: crc.littleEndian) { Array($0) })
        let path = try fixture.file(xz, name: "huge.xz")
        #expect(
            try CompressionFixture.passError(path, .xz)?.kind
                == .corrupt("it needs more than 512 MiB of memory to decode"))
    }

    @Test("bzip2, one stream and several (cat): a whole pass, not seekable")
    func bzip2() throws {
        let one = try fixture.compressed(original, "bzip2 -c -9", name: "a.tar.bz2")
        let (bytes, info) = try CompressionFixture.pass(one, .bzip2)
        #expect(bytes == original)
        #expect(!info.seekTable.isSeekable && info.seekTable.pointCount == 0)
        #expect(try info.seekTable.roundTripped() == info.seekTable)
        let several = try fixture.concatenated(pieces, "bzip2 -c -1", name: "cat.tar.bz2")
        #expect(try CompressionFixture.pass(several, .bzip2).0 == original)
    }

    @Test("bzip2: truncated, trailing garbage, a damaged block")
    func bzip2Damage() throws {
        let bz = try CompressionFixture.read(try fixture.compressed(original, "bzip2 -c", name: "a.bz2"))
        for cut in [2, 100, bz.count / 2, bz.count - 1] {
            let path = try fixture.file(Array(bz[0..<cut]), name: "cut.bz2")
            #expect(
                try CompressionFixture.passError(path, .bzip2)
                    == DecompressionError(format: .bzip2, path: path, compressedOffset: Int64(cut), kind: .truncated))
        }
        let garbage = try fixture.file(bz + [0, 0], name: "garbage.bz2")
        #expect(
            try CompressionFixture.passError(garbage, .bzip2)
                == DecompressionError(
                    format: .bzip2, path: garbage, compressedOffset: Int64(bz.count), kind: .trailingGarbage))
        var damaged = bz
        damaged[bz.count / 2] ^= 0x04
        let path = try fixture.file(damaged, name: "bad.bz2")
        let error = try #require(try CompressionFixture.passError(path, .bzip2))
        #expect(error.kind == .corrupt("bad block data or CRC mismatch"))
    }
}

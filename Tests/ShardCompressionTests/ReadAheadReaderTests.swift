import ShardCore
import ShardIO
import Testing

@testable import ShardCompression

/// The decompression a sequential pass reads through: a thread of its own, a few chunks ahead.
@Suite("ReadAheadReader: forward reads through a decompressing thread")
struct ReadAheadReaderTests {
    let fixture: CompressionFixture
    let original: [UInt8]

    init() throws {
        fixture = try CompressionFixture()
        original = CompressionFixture.data(1_500_000, seed: 11)
    }

    /// Bytes `offset ..< offset + count` through `reader` (fewer at the end).
    private func read(_ reader: ReadAheadReader, at offset: Int, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withUnsafeMutableBytes { try reader.read(into: $0, at: Int64(offset)) }
        return Array(out.prefix(n))
    }

    @Test(
        "every format (gzip, pigz, zstd, xz blocks, bzip2): front to back in uneven reads across 64 KiB chunks",
        arguments: [
            ("gzip -c -6", CompressionFormat.gzip), ("pigz -c -b 128", .gzip), ("zstd -c -q", .zstd),
            ("xz -c -1 --block-size=200KiB", .xz), ("bzip2 -c -1", .bzip2),
        ])
    func frontToBack(command: String, format: CompressionFormat) throws {
        let path = try fixture.compressed(original, command, name: "a")
        let reader = try ReadAheadReader(
            file: try ReadOnlyFile(path: path), format: format, chunkSize: 64 << 10, depth: 2)
        var out: [UInt8] = []
        // Reads of prime sizes, some within a chunk, some spanning several.
        let sizes = [1, 511, 65_537, 7919, 200_003, 512]
        var i = 0
        while true {
            let got = try read(reader, at: out.count, count: sizes[i % sizes.count])
            i += 1
            if got.isEmpty { break }
            out += got
        }
        #expect(out == original)
        // At the end, reads return nothing, again and again.
        #expect(try read(reader, at: original.count, count: 10) == [])
        #expect(try read(reader, at: original.count + 5000, count: 10) == [])
    }

    @Test("reads that skip ahead, re-read within the chunk still held, and go behind it")
    func skipsAndBehind() throws {
        // gzip: chunks of exactly 64 KiB (zstd's grow to hold its window).
        let path = try fixture.compressed(original, "gzip -c -6", name: "b.gz")
        let reader = try ReadAheadReader(
            file: try ReadOnlyFile(path: path), format: .gzip, chunkSize: 64 << 10, depth: 3)
        #expect(try read(reader, at: 10, count: 100) == Array(original[10..<110]))
        // Ahead by several chunks: the ones between are dropped.
        let far = 700_000
        #expect(try read(reader, at: far, count: 70_000) == Array(original[far..<(far + 70_000)]))
        // Back, but inside the chunk the last read ended in: still held.
        let chunkStart = (far + 70_000 - 1) / (64 << 10) * (64 << 10)
        #expect(try read(reader, at: chunkStart, count: 10) == Array(original[chunkStart..<(chunkStart + 10)]))
        // Behind every chunk held.
        #expect {
            _ = try read(reader, at: 5, count: 10)
        } throws: { error in
            guard let e = error as? DecompressionError, case .behindWindow(let offset, _) = e.kind else { return false }
            return offset == 5
        }
        // The last bytes, then fewer than asked.
        #expect(try read(reader, at: original.count - 3, count: 10) == Array(original.suffix(3)))
    }

    @Test(
        "the next read may start anywhere in the last one, across a chunk's end (a pass's window, then the sample that straddled it)"
    )
    func readsAgainFromTheLastStart() throws {
        let path = try fixture.compressed(original, "gzip -c -6", name: "w.gz")
        for depth in [2, 3] {
            let reader = try ReadAheadReader(
                file: try ReadOnlyFile(path: path), format: .gzip, chunkSize: 64 << 10, depth: depth)
            // Chunk 0 ends at 65,536: this read starts in it and ends in chunk 1.
            #expect(try read(reader, at: 60_000, count: 10_000) == Array(original[60_000..<70_000]))
            #expect(try read(reader, at: 65_000, count: 10_000) == Array(original[65_000..<75_000]))
            #expect(try read(reader, at: 60_500, count: 100) == Array(original[60_500..<60_600]))
            // A read that starts in chunk 1 gives chunk 0 back.
            #expect(try read(reader, at: 66_000, count: 100) == Array(original[66_000..<66_100]))
            #expect {
                _ = try read(reader, at: 65_000, count: 10)
            } throws: { error in
                guard let e = error as? DecompressionError, case .behindWindow(let offset, _) = e.kind else {
                    return false
                }
                return offset == 65_000
            }
            // A read over more chunks than the reader holds still goes through.
            let long = 400_000
            #expect(try read(reader, at: 70_000, count: long) == Array(original[70_000..<(70_000 + long)]))
        }
    }

    /// Text whose back-references reach far: 48 KiB of random words, then that text again and
    /// again with a few bytes changed, so matches span up to a 64 KiB window and cross chunk ends.
    private static func farReaching(_ count: Int) -> [UInt8] {
        let base = CompressionFixture.data(48 << 10, seed: 5)
        var rng = SplitMix64(seed: 9)
        var out: [UInt8] = []
        while out.count < count {
            var copy = base
            for _ in 0..<8 { copy[Int(rng.next(below: UInt64(copy.count)))] = UInt8(truncatingIfNeeded: rng.next()) }
            out += copy
        }
        return Array(out.prefix(count))
    }

    @Test(
        "zstd decodes in place into chunks that hold its window, and streams windows over 8 MiB",
        arguments: [
            // 64 KiB window: chunks of 192 KiB, references across every chunk's end.
            "zstd -c -q --zstd=wlog=16",
            // 2 MiB window (zstd -3's): one chunk holds the data.
            "zstd -c -q -3",
            // 16 MiB window: over 8 MiB, decoded by ZSTD_decompressStream into 64 KiB chunks.
            "zstd -c -q --zstd=wlog=24",
        ])
    func inPlace(command: String) throws {
        let data = Self.farReaching(3_000_000)
        let path = try fixture.compressed(data, command, name: "p.zst")
        for depth in [2, 3] {
            let reader = try ReadAheadReader(
                file: try ReadOnlyFile(path: path), format: .zstd, chunkSize: 64 << 10, depth: depth)
            var out: [UInt8] = []
            while true {
                let got = try read(reader, at: out.count, count: 100_003)
                if got.isEmpty { break }
                out += got
            }
            #expect(out.count == data.count)
            #expect(out == data, "\(command), depth \(depth)")
        }
    }

    @Test(
        "zstd in place, no frame checksum: reads longer than every chunk held and short reads get the exact bytes, at depth 2 and 3"
    )
    func inPlaceLongAndShortReads() throws {
        // Long reads give every chunk back while the thread waits (and would hand it the chunk it
        // filled last, the one its decoding refers to, if it did not skip that one).
        let data = Self.farReaching(4_000_000)
        // No content checksum: nothing but the bytes themselves shows a wrong one.
        let path = try fixture.compressed(data, "zstd -c -q --no-check --zstd=wlog=16", name: "n.zst")
        for depth in [2, 3] {
            for size in [1_000_003, 65_537, 4096] {
                let reader = try ReadAheadReader(
                    file: try ReadOnlyFile(path: path), format: .zstd, chunkSize: 64 << 10, depth: depth)
                var out: [UInt8] = []
                out.reserveCapacity(data.count)
                while true {
                    let got = try read(reader, at: out.count, count: size)
                    if got.isEmpty { break }
                    out += got
                }
                #expect(out.count == data.count)
                #expect(out == data, "depth \(depth), reads of \(size)")
            }
        }
    }

    @Test("zstd in place: frames of odd sizes and different windows, skippable frames, one after another")
    func inPlaceFrames() throws {
        // The first frame's 64 KiB window sizes the chunks (192 KiB): frames of that window are
        // decoded in place from wherever the last one ended (a chunk's end then falls short of a
        // block's room), the 2 MiB and 16 MiB ones stream.
        let frames = [
            (700_000, "zstd -c -q --zstd=wlog=16"), (5000, "zstd -c -q --zstd=wlog=16"), (300_000, "zstd -c -q"),
            (900_001, "zstd -c -q --zstd=wlog=16"), (200_000, "zstd -c -q --zstd=wlog=24"),
            (333_333, "zstd -c -q --zstd=wlog=15"),
        ]
        let pieces = frames.enumerated().map { i, frame in Array(Self.farReaching(frame.0 + i).reversed()) }
        var file: [UInt8] = []
        let skippable: [UInt8] = [0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]
        for (i, (piece, command)) in zip(pieces, frames.map(\.1)).enumerated() {
            // Skippable frames between data frames (the first frame's header sizes the chunks).
            if i > 0 { file += skippable }
            file += try CompressionFixture.read(try fixture.compressed(piece, command, name: "f.zst"))
        }
        let path = try fixture.file(file, name: "frames.zst")
        let reader = try ReadAheadReader(
            file: try ReadOnlyFile(path: path), format: .zstd, chunkSize: 64 << 10, depth: 2)
        let all = pieces.flatMap { $0 }
        var out: [UInt8] = []
        while true {
            let got = try read(reader, at: out.count, count: 65_521)
            if got.isEmpty { break }
            out += got
        }
        #expect(out == all)
    }

    @Test("damaged and truncated data: the read that reaches it throws the decompressor's error")
    func damage() throws {
        let zst = try CompressionFixture.read(try fixture.compressed(original, "zstd -c -q --check", name: "c.zst"))
        let cut = try fixture.file(Array(zst[0..<(zst.count / 2)]), name: "cut.zst")
        let reader = try ReadAheadReader(file: try ReadOnlyFile(path: cut), format: .zstd, chunkSize: 64 << 10)
        // The first bytes decompress; reading on reaches the cut.
        #expect(try read(reader, at: 0, count: 1000) == Array(original[0..<1000]))
        #expect {
            for offset in stride(from: 0, to: original.count, by: 100_000) {
                _ = try read(reader, at: offset, count: 100_000)
            }
        } throws: { error in
            (error as? DecompressionError)
                == DecompressionError(
                    format: .zstd, path: cut, compressedOffset: Int64(zst.count / 2), kind: .truncated)
        }
        var damaged = zst
        damaged[zst.count - 2] ^= 0xff  // in the content checksum
        let bad = try fixture.file(damaged, name: "bad.zst")
        let second = try ReadAheadReader(file: try ReadOnlyFile(path: bad), format: .zstd, chunkSize: 64 << 10)
        #expect {
            _ = try read(second, at: 0, count: original.count + 1)
        } throws: { error in
            (error as? DecompressionError)?.kind == .corrupt("Restored data doesn't match checksum")
        }
    }

    @Test("a reader dropped while its thread waits for room, or before any read, ends the thread")
    func droppedEarly() throws {
        let path = try fixture.compressed(original, "gzip -c -1", name: "d.gz")
        for reads in [0, 1] {
            var reader: ReadAheadReader? = try ReadAheadReader(
                file: try ReadOnlyFile(path: path), format: .gzip, chunkSize: 64 << 10, depth: 2)
            if reads == 1 { #expect(try read(reader!, at: 0, count: 10) == Array(original[0..<10])) }
            // Joins the thread, which waits for room (reads == 1) or is filling its first chunks:
            // a thread that does not end hangs the run here.
            reader = nil
        }
        let again = try ReadAheadReader(file: try ReadOnlyFile(path: path), format: .gzip)
        #expect(try read(again, at: 1000, count: 50) == Array(original[1000..<1050]))
    }
}

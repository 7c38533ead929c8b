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
        let path = try fixture.compressed(original, "zstd -c -q", name: "b.zst")
        let reader = try ReadAheadReader(
            file: try ReadOnlyFile(path: path), format: .zstd, chunkSize: 64 << 10, depth: 3)
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

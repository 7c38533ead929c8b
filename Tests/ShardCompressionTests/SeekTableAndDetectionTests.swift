import ShardCore
import ShardIO
import ShardTestSupport
import Testing

@testable import ShardCompression

/// Stored seek tables that were damaged are refused, never used; formats are told by magic.
@Suite("seek table validation, format detection")
struct SeekTableAndDetectionTests {
    let fixture: CompressionFixture

    init() throws { fixture = try CompressionFixture() }

    private func decode(_ bytes: [UInt8], _ table: SeekTable, compressedSize: Int64? = nil) throws(DecompressionError)
        -> SeekTable
    {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        return try SeekTable(
            decoding: UnsafeRawBufferPointer(copy), format: table.format,
            compressedSize: compressedSize ?? table.compressedSize, uncompressedSize: table.uncompressedSize, path: "s")
    }

    private func expectRefused(
        _ bytes: [UInt8], _ table: SeekTable, compressedSize: Int64? = nil, _ comment: Comment? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try decode(bytes, table, compressedSize: compressedSize)
            Issue.record("accepted: \(comment?.rawValue ?? "")", sourceLocation: sourceLocation)
        } catch {
            guard case .badSeekTable = error.kind else {
                Issue.record("\(error)", sourceLocation: sourceLocation)
                return
            }
        }
    }

    @Test("every flipped byte, every cut, another shard's sizes: refused as .badSeekTable")
    func damagedTables() throws {
        let original = CompressionFixture.data(3 << 20, seed: 5)
        var tables: [SeekTable] = []
        let gz = try fixture.compressed(original, "gzip -c", name: "a.gz")
        tables.append(try CompressionFixture.pass(gz, .gzip).1.seekTable)
        let xz = try fixture.compressed(original, "xz -c -0 --block-size=1MiB", name: "a.xz")
        tables.append(try CompressionFixture.pass(xz, .xz).1.seekTable)
        for table in tables {
            let bytes = table.serialized()
            #expect(try decode(bytes, table) == table)
            // Every byte of small tables; a sample of the windows of large ones.
            let positions =
                bytes.count <= 4096
                ? Array(0..<bytes.count)
                : Array(0..<200) + Array(stride(from: 200, to: bytes.count, by: 61))
                    + Array((bytes.count - 8)..<bytes.count)
            for position in positions {
                for mask: UInt8 in [0x01, 0x80] {
                    var damaged = bytes
                    damaged[position] ^= mask
                    expectRefused(damaged, table, "flip \(mask) at \(position)")
                }
            }
            for cut in [0, 1, 27, 28, 40, bytes.count / 2, bytes.count - 1] {
                expectRefused(Array(bytes[0..<cut]), table, "cut at \(cut)")
            }
            expectRefused(bytes + [0], table, "a byte added")
            expectRefused(bytes, table, compressedSize: table.compressedSize + 1, "another size")
        }
    }

    @Test("a table whose CRC is right but whose fields are wrong is refused (never trusted for allocations)")
    func forgedTables() throws {
        let original = CompressionFixture.data(3 << 20, seed: 6)
        let gz = try fixture.compressed(original, "gzip -c", name: "a.gz")
        let table = try CompressionFixture.pass(gz, .gzip).1.seekTable
        func forged(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
            var bytes = Array(table.serialized().dropLast(4))
            edit(&bytes)
            var crc = CRC32C()
            bytes.withUnsafeBytes { crc.update($0) }
            return bytes + withUnsafeBytes(of: crc.value.littleEndian) { Array($0) }
        }
        // Point count huge.
        expectRefused(
            forged {
                $0[24] = 0xff
                $0[25] = 0xff
                $0[26] = 0xff
                $0[27] = 0x7f
            }, table, "count")
        // Second point's uncompressed offset beyond the data.
        let second = 28 + 23
        expectRefused(forged { $0[second + 8 + 7] = 0x40 }, table, "offset")
        // Second point's window length above 32 KiB.
        expectRefused(forged { $0[second + 19] = 0x90 }, table, "window length")
        // Second point's bits above 7.
        expectRefused(forged { $0[second + 17] = 9 }, table, "bits")
        // A compressed window whose stored bytes are damaged: in the frame's header, and in its
        // middle (the zstd frame's checksum, as a deflated window's Adler-32, refuses it).
        #expect(table.points[1].windowCoding == .zstd)
        let stored = table.points[1].storedWindow.count
        expectRefused(forged { $0[second + 23 + 5] ^= 0x55 }, table, "window bytes")
        expectRefused(forged { $0[second + 23 + stored / 2] ^= 0x55 }, table, "window bytes, middle")
        expectRefused(forged { $0[second + 23 + stored - 1] ^= 0x01 }, table, "window checksum")
        // Flag 4 (a zstd window) in a version 1 table, which has none.
        expectRefused(forged { $0[4] = 1 }, table, "zstd window in version 1")
        // Another format's table.
        expectRefused(forged { $0[5] = CompressionFormat.zstd.rawValue }, table, "format")
    }

    @Test("version 1 tables (deflated windows) written before version 2 still read back the same bytes")
    func versionOneTables() throws {
        let original = CompressionFixture.data(3 << 20, seed: 7)
        let gz = try fixture.compressed(original, "gzip -c", name: "a.gz")
        let table = try CompressionFixture.pass(gz, .gzip).1.seekTable
        // The table as a build of version 1 wrote it: each window deflated (raw when that is not
        // smaller), version byte 1.
        var points = table.points
        for i in points.indices where points[i].windowLength > 0 {
            let window = points[i].window()
            let deflated = window.withUnsafeBytes { Zlib.compress($0, level: 1) }
            (points[i].storedWindow, points[i].windowCoding) =
                deflated.count < window.count ? (deflated, .deflate) : (window, .raw)
        }
        #expect(points.contains { $0.windowCoding == .deflate })
        let old = SeekTable(
            format: .gzip, compressedSize: table.compressedSize, uncompressedSize: table.uncompressedSize,
            points: points)
        var bytes = Array(old.serialized().dropLast(4))
        #expect(bytes[4] == 2)
        bytes[4] = 1
        var crc = CRC32C()
        bytes.withUnsafeBytes { crc.update($0) }
        bytes += withUnsafeBytes(of: crc.value.littleEndian) { Array($0) }
        let decoded = try decode(bytes, table)
        #expect(decoded == old)
        #expect(zip(decoded.points, table.points).allSatisfy { $0.window() == $1.window() })
        let reader = SeekableReader(file: try ReadOnlyFile(path: gz), info: CompressedShardInfo(seekTable: decoded))
        try CompressionFixture.checkRandomReads(reader, original, points: decoded.points.map(\.uncompressedOffset))
    }

    @Test("detection by magic bytes, never by name")
    func detection() throws {
        func detect(_ bytes: [UInt8]) -> CompressionFormat { bytes.withUnsafeBytes { CompressionFormat.detect($0) } }
        #expect(detect([0x1f, 0x8b, 8, 0, 0, 0]) == .gzip)
        #expect(detect([0x28, 0xb5, 0x2f, 0xfd, 0, 0]) == .zstd)
        #expect(detect([0x5a, 0x2a, 0x4d, 0x18, 0, 0]) == .zstd)
        #expect(detect([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) == .xz)
        #expect(detect([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01]) == .none)
        #expect(detect(Array("BZh9".utf8)) == .bzip2)
        #expect(detect(Array("BZh0".utf8)) == .none)
        #expect(detect([0x1f]) == .none)
        #expect(detect([]) == .none)
        #expect(CompressionFormat.detectionBytes == 6)
        for format in CompressionFormat.allCases { #expect(CompressionFormat(name: format.name) == format) }
        #expect(CompressionFormat(name: "gz") == nil)
        // A .tar.gz named .tar and a plain tar named .tar.gz.
        let tar = TarWriterBytes.sample()
        let gzNamedTar = try fixture.compressed(tar, "gzip -c", name: "shard.tar")
        let tarNamedGz = try fixture.file(tar, name: "shard.tar.gz")
        for (path, expected) in [(gzNamedTar, CompressionFormat.gzip), (tarNamedGz, .none)] {
            let file = try ReadOnlyFile(path: path)
            let prefix = try file.read(count: CompressionFormat.detectionBytes, at: 0)
            #expect(detect(prefix) == expected)
        }
    }
}

enum TarWriterBytes {
    static func sample() -> [UInt8] {
        var tar = TarWriter()
        tar.addFile("000000.txt", Array("hello".utf8))
        tar.finish()
        return tar.bytes
    }
}

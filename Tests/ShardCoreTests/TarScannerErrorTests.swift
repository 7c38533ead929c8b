import ShardCore
import ShardTestSupport
import Testing

@Suite("TarScanner: damaged and foreign files")
struct TarScannerErrorTests {
    /// The unsigned checksum of a block as POSIX defines it, computed independently.
    func unsignedSum(_ block: ArraySlice<UInt8>) -> Int64 {
        var sum: Int64 = 0
        for (index, byte) in block.enumerated() {
            sum += (148..<156).contains(index) ? 0x20 : Int64(byte)
        }
        return sum
    }

    func twoFiles() -> TarWriter {
        var tar = TarWriter(format: .ustar)
        tar.addFile("a.txt", pattern(10))  // header 0, data 512
        tar.addFile("b.bin", pattern(1000))  // header 1024, data 1536..<2536
        tar.finish()
        return tar
    }

    // MARK: - Before the first header

    @Test("a 0-byte file is empty")
    func empty() {
        #expect(scanError([]) == TarError(.empty, at: 0))
        #expect(TarError(.empty, at: 0).description == "empty file (0 bytes), not a tar archive")
    }

    @Test(
        "compressed files are recognised by their magic, short or long",
        arguments: [
            ([0x1f, 0x8b] as [UInt8], TarError.Compression.gzip),
            (Array(utf8: "BZh9"), .bzip2),
            ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], .xz),
            ([0x28, 0xb5, 0x2f, 0xfd], .zstd),
        ])
    func compressed(magic: [UInt8], compression: TarError.Compression) {
        #expect(scanError(magic + [0x08, 0x00]) == TarError(.compressed(compression), at: 0))
        #expect(scanError(magic + pattern(5000)) == TarError(.compressed(compression), at: 0))
    }

    @Test("a file whose name starts with compression magic is still a tar")
    func magicLikeName() throws {
        var tar = TarWriter()
        tar.addFile("BZh-notes.txt", pattern(3))
        tar.finish()
        #expect(try scanAll(tar.bytes) == tar.entries)
    }

    @Test("text, or a v7-looking block with a bad checksum, at offset 0 is not a tar")
    func notATar() {
        let text = Array(utf8: String(repeating: "hello, this is not a tar archive\n", count: 30))
        #expect(scanError(text) == TarError(.notATar, at: 0))
        #expect(scanError(Array(text.prefix(100))) == TarError(.notATar, at: 0))
        var v7 = TarWriter(format: .v7)
        v7.addFile("a.txt", pattern(10))
        v7.finish()
        v7.corruptChecksum(ofBlockAt: 0)
        #expect(scanError(v7.bytes) == TarError(.notATar, at: 0))
        #expect(
            TarError(.notATar, at: 0).description
                == "not a tar archive: no valid tar header at offset 0")
    }

    @Test("a first block with ustar magic and a bad checksum is a bad checksum")
    func badChecksumAtZero() {
        var tar = twoFiles()
        tar.corruptChecksum(ofBlockAt: 0)
        let stored = Int64(String(decoding: tar.bytes[148..<154], as: UTF8.self), radix: 8)!
        let computed = unsignedSum(tar.bytes[0..<512])
        #expect(stored != computed)
        #expect(
            scanError(tar.bytes)
                == TarError(.badChecksum(stored: stored, computed: computed), at: 0))
    }

    // MARK: - Damaged headers

    @Test("a corrupt later header is a bad checksum at its offset")
    func badChecksumLater() {
        var tar = twoFiles()
        tar.corruptChecksum(ofBlockAt: 1024)
        let stored = Int64(String(decoding: tar.bytes[1172..<1178], as: UTF8.self), radix: 8)!
        let computed = unsignedSum(tar.bytes[1024..<1536])
        #expect(
            scanError(tar.bytes)
                == TarError(.badChecksum(stored: stored, computed: computed), at: 1024))
        #expect(
            TarError(.badChecksum(stored: stored, computed: computed), at: 1024).description
                == "tar header checksum mismatch at offset 1024 (stored \(stored), computed \(computed))"
        )
    }

    @Test("garbage after the first member (no end marker) is a bad checksum there")
    func garbageInsteadOfHeader() {
        var tar = TarWriter()
        tar.addFile("a.txt", pattern(10))
        tar.appendRaw([UInt8](repeating: UInt8(ascii: "1"), count: 512))
        #expect(
            scanError(tar.bytes)
                == TarError(
                    .badChecksum(stored: 0o11111111, computed: 0x31 * 504 + 0x20 * 8), at: 1024))
    }

    @Test("a checksum field that is not a number")
    func checksumNotANumber() {
        let tar = twoFiles()
        var damaged = tar.bytes
        damaged.replaceSubrange((1024 + 148)..<(1024 + 156), with: Array(utf8: "zzzzzzz\0"))
        #expect(scanError(damaged) == TarError(.badNumericField(field: "checksum"), at: 1024))
        damaged = tar.bytes
        damaged.replaceSubrange(148..<156, with: Array(utf8: "zzzzzzz\0"))
        #expect(scanError(damaged) == TarError(.badNumericField(field: "checksum"), at: 0))
    }

    @Test(
        "negative or non-octal sizes",
        arguments: [
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0x00] as [UInt8],
            Array(utf8: "0000001750x\0"),
            Array(utf8: "00000001758\0"),
            Array(utf8: "-0000001750\0"),
            [0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ])
    func badSize(field: [UInt8]) {
        var tar = twoFiles()
        var block = Array(tar.bytes[1024..<1536])
        block.replaceSubrange(124..<136, with: field)
        TarWriter.setChecksum(&block)
        tar.truncate(to: 1024)
        tar.appendRaw(block)
        #expect(scanError(tar.bytes) == TarError(.badNumericField(field: "size"), at: 1024))
        #expect(
            TarError(.badNumericField(field: "size"), at: 1024).description
                == "invalid numeric size field in the tar header at offset 1024")
    }

    // MARK: - Truncation

    @Test("the file ends inside a header block")
    func truncatedHeader() {
        var tar = twoFiles()
        tar.truncate(to: 1124)
        #expect(scanError(tar.bytes) == TarError(.truncatedHeader(fileSize: 1124), at: 1024))
        #expect(
            TarError(.truncatedHeader(fileSize: 1124), at: 1024).description
                == "truncated tar header at offset 1024 (file ends at 1124)")
        // Inside the first header: truncated when the magic is visible, else not a tar.
        var first = twoFiles()
        first.truncate(to: 300)
        #expect(scanError(first.bytes) == TarError(.truncatedHeader(fileSize: 300), at: 0))
        first.truncate(to: 200)
        #expect(scanError(first.bytes) == TarError(.notATar, at: 0))
    }

    @Test("the file ends inside a member's data")
    func truncatedMember() {
        var tar = twoFiles()
        tar.truncate(to: 2535)
        #expect(
            scanError(tar.bytes)
                == TarError(.truncatedMember(needed: 2536, fileSize: 2535), at: 1024))
        #expect(
            TarError(.truncatedMember(needed: 2536, fileSize: 2535), at: 1024).description
                == "truncated member at offset 1024: its data ends at 2536 but the file ends at 2535"
        )
        tar.truncate(to: 1536)
        #expect(
            scanError(tar.bytes)
                == TarError(.truncatedMember(needed: 2536, fileSize: 1536), at: 1024))
    }

    @Test(
        "a truncated member with pax or GNU headers is reported at its first header block",
        arguments: [TarWriter.Format.pax, .gnu])
    func truncatedMemberWithExtendedHeaders(format: TarWriter.Format) {
        var tar = TarWriter(format: format)
        tar.addFile("a.txt", [1])
        let entry = tar.addFile(String(repeating: "long/", count: 30) + "x.bin", pattern(900))
        tar.truncate(to: Int(entry.dataOffset) + 10)
        #expect(entry.headerOffset == 1024)
        #expect(
            scanError(tar.bytes)
                == TarError(
                    .truncatedMember(
                        needed: entry.dataOffset + 900, fileSize: entry.dataOffset + 10), at: 1024))
    }

    @Test(
        "the file ends inside pax or GNU long-name data, or right after such a header",
        arguments: [TarWriter.Format.pax, .gnu])
    func truncatedExtendedData(format: TarWriter.Format) {
        var tar = TarWriter(format: format)
        tar.addFile("a.txt", [1])
        tar.addFile(String(repeating: "long/", count: 60) + "x.bin", pattern(900))
        var cut = tar
        cut.truncate(to: 1024 + 512 + 100)
        #expect(scanError(cut.bytes) == TarError(.truncatedHeader(fileSize: 1636), at: 1024))
        cut = tar
        cut.truncate(to: 1024 + 512 + 512)  // the extended data is complete; the header is missing
        #expect(scanError(cut.bytes) == TarError(.truncatedHeader(fileSize: 2048), at: 2048))
    }

    @Test("a GNU long name followed by the end marker ends the archive")
    func danglingLongName() throws {
        var tar = TarWriter(format: .gnu)
        tar.addFile("a.txt", [1])
        let name = Array(utf8: String(repeating: "n", count: 120)) + [0]
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "././@LongLink"), typeflag: UInt8(ascii: "L"),
                size: Int64(name.count), format: .gnu))
        tar.appendRaw(TarWriter.padded(name))
        tar.finish()
        #expect(try scanAll(tar.bytes) == tar.entries)
    }

    @Test("the file ends inside GNU sparse extension blocks")
    func truncatedSparseExtension() {
        var header = TarWriter.header(
            name: Array(utf8: "s.img"), typeflag: UInt8(ascii: "S"), size: 0, format: .gnu)
        header[482] = 1
        TarWriter.setChecksum(&header)
        #expect(scanError(header) == TarError(.truncatedHeader(fileSize: 512), at: 512))
        var extensions = [UInt8](repeating: 0, count: 512)
        extensions[504] = 1
        #expect(
            scanError(header + extensions + pattern(300))
                == TarError(.truncatedHeader(fileSize: 1324), at: 1024))
    }

    // MARK: - pax records

    @Test(
        "malformed pax records name what is wrong",
        arguments: [
            ("abc", #"record at byte 0 does not start with a decimal length (found "abc")"#),
            (
                "-5 path=x\n",
                #"record at byte 0 does not start with a decimal length (found "-5 path=")"#
            ),
            ("10path=xy\n", "record at byte 0 has no space after its length"),
            ("3 a=\n", "record at byte 0 declares length 3, too short for a keyword"),
            ("99 path=x\n", "record at byte 0 declares length 99 but only 10 bytes remain"),
            ("10 path=xyz\n", "record at byte 0 (length 10) does not end with a newline"),
            ("9 pathxx\n", "record at byte 0 has no '=' after its keyword"),
            ("5 =x\n", "record at byte 0 has an empty keyword"),
            (
                "12 size=12a\n",
                #"record at byte 0: size "12a" is not a decimal number that fits in 64 bits"#
            ),
            (
                "11 size=-1\n",
                #"record at byte 0: size "-1" is not a decimal number that fits in 64 bits"#
            ),
            (
                "30 size=999999999999999999999\n",
                #"record at byte 0: size "999999999999999999999" is not a decimal number that fits in 64 bits"#
            ),
            (
                "11 path=ab\nxyz",
                #"record at byte 11 does not start with a decimal length (found "xyz")"#
            ),
            ("99999999999999999999999 a=b\n", "record at byte 0 declares an absurd length"),
            (
                "6 a=\u{1}\n\n",
                #"record at byte 6 does not start with a decimal length (found "\x0a")"#
            ),
        ])
    func malformedPax(records: String, detail: String) {
        let data = Array(utf8: records)
        var tar = TarWriter(format: .pax)
        tar.addFile("a.txt", [1])
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "PaxHeaders/b"), typeflag: UInt8(ascii: "x"),
                size: Int64(data.count), format: .pax))
        tar.appendRaw(TarWriter.padded(data))
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "b.txt"), typeflag: UInt8(ascii: "0"), size: 0, format: .pax))
        tar.finish()
        let error = scanError(tar.bytes)
        #expect(error == TarError(.badPaxRecord(detail), at: 1024))
        #expect(error?.description == "malformed pax extended header at offset 1024: " + detail)
    }

    @Test("a malformed global header is reported too")
    func malformedGlobal() {
        var tar = TarWriter(format: .pax)
        let data = Array(utf8: "7 path\n")
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "GlobalHead.0.0"), typeflag: UInt8(ascii: "g"),
                size: Int64(data.count), format: .pax))
        tar.appendRaw(TarWriter.padded(data))
        tar.finish()
        #expect(
            scanError(tar.bytes)
                == TarError(.badPaxRecord("record at byte 0 has no '=' after its keyword"), at: 0))
    }

    @Test("pax and long-name data larger than 64 MiB is refused, not allocated")
    func extendedHeaderLimit() throws {
        let size: Int64 = 100 << 20
        for (flag, kind) in [
            (
                "x",
                TarError.Kind.badPaxRecord(
                    "its 104857600 bytes of records exceed the 64 MiB this reader accepts")
            ),
            ("L", .longNameTooLong(size: size, limit: 64 << 20)),
        ] {
            let header = TarWriter.header(
                name: Array(utf8: "big"), typeflag: Character(flag).asciiValue!, size: size,
                format: .gnu)
            let source = SparseBytes(byteCount: 1 << 30, blocks: [0: header])
            var scanner = TarScanner(source)
            #expect(throws: TarError(kind, at: 0)) { try scanner.next() }
        }
        // The long name's message says what is too long, not "invalid numeric size field".
        #expect(
            TarError(.longNameTooLong(size: size, limit: 64 << 20), at: 0).description
                == "the GNU long name at offset 0 is 104857600 bytes, over the 64 MiB (67108864 bytes) this reader accepts for a member name"
        )
        // A long link name is skipped unread, whatever its size.
        let link = TarWriter.header(
            name: Array(utf8: "././@LongLink"), typeflag: UInt8(ascii: "K"), size: size,
            format: .gnu)
        let next = TarWriter.header(
            name: Array(utf8: "l"), typeflag: UInt8(ascii: "2"), size: 0, format: .gnu,
            linkName: Array(utf8: "t"))
        let source = SparseBytes(byteCount: 1 << 30, blocks: [0: link, 512 + size: next])
        #expect(
            try scanAll(source) == [
                TarEntry(
                    name: Array(utf8: "l"), kind: .symlink, headerOffset: 0,
                    dataOffset: 1024 + size, size: 0)
            ])
    }

    // MARK: - I/O and stickiness

    @Test("read failures become .io at the offset being read; errors are sticky")
    func ioFailure() throws {
        let tar = twoFiles()
        var scanner = TarScanner(FailingBytes(bytes: tar.bytes, failFrom: 1100))
        #expect(try scanner.next() == tar.entries[0])
        let expected = TarError(.io("simulated EIO"), at: 1024)
        #expect(throws: expected) { try scanner.next() }
        #expect(throws: expected) { try scanner.next() }
        #expect(expected.description == "read failed at offset 1024: simulated EIO")
    }

    @Test("a size whose end overflows 64 bits")
    func sizeOverflow() {
        var tar = TarWriter(format: .pax)
        tar.addFile("a.txt", [1], paxRecords: [.init("size", String(Int64.max - 100))])
        tar.finish()
        #expect(scanError(tar.bytes) == TarError(.badNumericField(field: "size"), at: 1024))
    }
}

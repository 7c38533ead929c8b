import ShardCore
import ShardTestSupport
import Testing

@Suite("TarScanner: formats and entries")
struct TarScannerTests {
    @Test("every entry kind round-trips in every format", arguments: TarWriter.Format.allCases)
    func everyKindRoundTrips(format: TarWriter.Format) throws {
        var tar = TarWriter(format: format)
        tar.addDirectory("shard")
        tar.addFile("shard/000001.jpg", pattern(1000))
        tar.addFile("shard/000001.json", Array(utf8: "{\"a\": 1}"))
        tar.addFile("shard/empty.txt", [])
        tar.addFile("shard/exact.bin", pattern(512, seed: 7))
        tar.addSymlink("shard/link.jpg", target: "000001.jpg")
        tar.addHardLink("shard/hard.jpg", target: "shard/000001.jpg")
        tar.addFifo("shard/fifo")
        tar.finish(recordSize: 10240)

        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(
            entries.map(\.kind) == [
                .directory, .regular, .regular, .regular, .regular, .symlink, .hardLink, .fifo,
            ])
        #expect(data(of: entries[1], in: tar.bytes) == pattern(1000))
        #expect(data(of: entries[2], in: tar.bytes) == Array(utf8: "{\"a\": 1}"))
        #expect(data(of: entries[4], in: tar.bytes) == pattern(512, seed: 7))
    }

    @Test("offsets are byte-exact: header, data, padding")
    func exactOffsets() throws {
        var tar = TarWriter(format: .ustar)
        tar.addDirectory("d")
        tar.addFile("d/a.jpg", pattern(1000))
        tar.addFile("d/b.txt", [])
        tar.addFile("d/c.bin", pattern(513))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(
            entries == [
                TarEntry(
                    name: Array(utf8: "d/"), kind: .directory, headerOffset: 0, dataOffset: 512,
                    size: 0),
                TarEntry(
                    name: Array(utf8: "d/a.jpg"), kind: .regular, headerOffset: 512,
                    dataOffset: 1024, size: 1000),
                TarEntry(
                    name: Array(utf8: "d/b.txt"), kind: .regular, headerOffset: 2048,
                    dataOffset: 2560, size: 0),
                TarEntry(
                    name: Array(utf8: "d/c.bin"), kind: .regular, headerOffset: 2560,
                    dataOffset: 3072, size: 513),
            ])
        #expect(tar.bytes.count == 3072 + 1024 + 1024)
    }

    @Test("statistics and the end offset")
    func statistics() throws {
        var tar = TarWriter(format: .gnu)
        tar.addFile(String(repeating: "n", count: 150) + ".txt", pattern(10))
        tar.addFile("short.txt", pattern(10))
        let end = tar.count
        tar.finish()
        var scanner = TarScanner(InMemoryBytes(tar.bytes))
        while try scanner.next() != nil {}
        #expect(scanner.offset == Int64(end))
        // L header, its header, short header, the end block.
        #expect(
            scanner.statistics
                == {
                    var expected = TarScanStatistics()
                    expected.entries = 2
                    expected.headerBlocks = 4
                    expected.extendedHeaderBytes = 155
                    return expected
                }())
        #expect(try scanner.next() == nil)
    }

    // MARK: - Names

    @Test("ustar joins prefix and name; a 155-byte prefix and 100-byte name need no NULs")
    func ustarPrefix() throws {
        let long =
            String(repeating: "a", count: 60) + "/" + String(repeating: "b", count: 60) + "/"
            + String(repeating: "c", count: 90) + ".jpg"
        var tar = TarWriter(format: .ustar)
        tar.addFile(long, pattern(10))
        let full =
            [UInt8](repeating: UInt8(ascii: "p"), count: 155) + [UInt8(ascii: "/")]
            + [UInt8](repeating: UInt8(ascii: "n"), count: 100)
        tar.addFile(name: full, data: pattern(3))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(entries[0].name == Array(utf8: long))
        #expect(entries[1].name == full)
        #expect(tar.bytes[345] == UInt8(ascii: "a"))  // the prefix field was used
    }

    @Test("star: the prefix is 131 bytes; atime and ctime after it are not part of the name")
    func starPrefix() throws {
        var block = TarWriter.header(
            name: Array(utf8: "name.txt"), typeflag: UInt8(ascii: "0"), size: 5, format: .star,
            prefix: [UInt8](repeating: UInt8(ascii: "p"), count: 131))
        block.replaceSubrange(476..<488, with: TarWriter.octal(1_700_000_000, width: 12))
        block.replaceSubrange(488..<500, with: TarWriter.octal(1_700_000_001, width: 12))
        TarWriter.setChecksum(&block)
        var tar = TarWriter(format: .star)
        tar.appendRaw(block + TarWriter.padded(pattern(5)))
        tar.addFile(
            String(repeating: "q", count: 120) + "/" + String(repeating: "r", count: 90), [1])
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(
            entries[0].name == [UInt8](repeating: UInt8(ascii: "p"), count: 131)
                + Array(utf8: "/name.txt"))
        #expect(entries[0].size == 5)
        #expect(Array(entries.dropFirst()) == tar.entries)
    }

    @Test(
        "old GNU and v7 headers have no prefix: bytes at 345 are not a name",
        arguments: [TarWriter.Format.gnu, .v7])
    func noPrefix(format: TarWriter.Format) throws {
        var block = TarWriter.header(
            name: Array(utf8: "n.txt"), typeflag: UInt8(ascii: "0"), size: 0, format: format)
        block.replaceSubrange(345..<369, with: Array(utf8: "14567234567\u{0}14567234567\u{0}"))
        TarWriter.setChecksum(&block)
        let entries = try scanAll(block + [UInt8](repeating: 0, count: 1024))
        #expect(
            entries == [
                TarEntry(
                    name: Array(utf8: "n.txt"), kind: .regular, headerOffset: 0, dataOffset: 512,
                    size: 0)
            ])
    }

    @Test(
        "names are raw bytes: invalid UTF-8 and non-ASCII pass through",
        arguments: TarWriter.Format.allCases)
    func rawNames(format: TarWriter.Format) throws {
        let name: [UInt8] = [
            0xff, 0xfe, 0x2f, 0x63, 0x61, 0x66, 0xc3, 0xa9, 0x2e, 0x6a, 0x70, 0x67, 0x0a, 0x80,
        ]
        var tar = TarWriter(format: format)
        tar.addFile(name: name, data: pattern(7))
        tar.addFile("日本語/ファイル.TXT", pattern(8))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(entries[0].name == name)
        #expect(entries[1].name == Array(utf8: "日本語/ファイル.TXT"))
    }

    @Test("GNU long names (L) and long link names (K): headerOffset is the first extra block")
    func gnuLongNames() throws {
        let longName = String(repeating: "dir/", count: 40) + "x.jpg"
        let longTarget = String(repeating: "t", count: 200)
        var tar = TarWriter(format: .gnu)
        tar.addFile("first.txt", pattern(3))
        tar.addFile(longName, pattern(700))
        tar.addSymlink("link.jpg", target: longTarget)
        tar.addSymlink(longName + ".lnk", target: longTarget)
        tar.addFile("last.txt", pattern(1))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(entries[1].name == Array(utf8: longName))
        #expect(entries[1].headerOffset == 1024)  // the L block
        #expect(entries[1].dataOffset == 1024 + 512 + 512 + 512)  // L header, its data, the header
        #expect(data(of: entries[1], in: tar.bytes) == pattern(700))
        #expect(entries[2].name == Array(utf8: "link.jpg"))
        #expect(entries[2].headerOffset == entries[1].dataOffset + 1024)  // the K block
        #expect(entries[3].name == Array(utf8: longName + ".lnk"))
        #expect(entries[4].name == Array(utf8: "last.txt"))
    }

    @Test("a GNU long name without a terminating NUL, and one followed by padding NULs")
    func gnuLongNameFraming() throws {
        let name = Array(utf8: String(repeating: "z", count: 130) + ".txt")
        var tar = TarWriter(format: .gnu)
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "././@LongLink"), typeflag: UInt8(ascii: "L"),
                size: Int64(name.count), format: .gnu))
        tar.appendRaw(TarWriter.padded(name))
        tar.appendRaw(
            TarWriter.header(
                name: Array(name.prefix(100)), typeflag: UInt8(ascii: "0"), size: 0, format: .gnu))
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "././@LongLink"), typeflag: UInt8(ascii: "L"),
                size: Int64(name.count + 20), format: .gnu))
        tar.appendRaw(TarWriter.padded(name + [UInt8](repeating: 0, count: 20)))
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "short"), typeflag: UInt8(ascii: "0"), size: 0, format: .gnu))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries.map(\.name) == [name, name])
        #expect(entries.map(\.headerOffset) == [0, 1536])
        #expect(entries.map(\.dataOffset) == [1536, 3072])
    }

    // MARK: - pax

    @Test("pax path and size records; the header size field is ignored when size is given")
    func paxPathAndSize() throws {
        let longName = String(repeating: "p/", count: 100) + "x.bin"
        var tar = TarWriter(format: .pax)
        tar.addFile(longName, pattern(3000))
        tar.addFile(
            "sized.bin", pattern(1500),
            paxRecords: [.init("size", "1500"), .init("mtime", "1700000000.5")])
        tar.addFile("after.txt", pattern(5))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(entries[0].name == Array(utf8: longName))
        #expect(entries[0].headerOffset == 0)
        #expect(entries[1].size == 1500)
        #expect(data(of: entries[1], in: tar.bytes) == pattern(1500))
        #expect(entries[2].name == Array(utf8: "after.txt"))
        // The header of sized.bin really holds 0.
        let header = Int(entries[1].dataOffset) - 512
        #expect(Array(tar.bytes[(header + 124)..<(header + 136)]) == TarWriter.octal(0, width: 12))
    }

    @Test("pax globals apply to all following entries; x overrides; empty values")
    func paxGlobals() throws {
        var tar = TarWriter(format: .pax)
        tar.addGlobalHeader([.init("comment", "made by a test"), .init("path", "global/name.txt")])
        tar.addFile("a.txt", [1, 2, 3])
        tar.addFile("b.txt", [4], paxRecords: [.init("path", "x/override.txt")])
        tar.addFile("c.txt", [5], paxRecords: [.init("path", "")])
        tar.addFile("d.txt", [6])
        tar.addGlobalHeader([.init("path", "")])
        tar.addFile("e.txt", [7])
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(
            entries.map(\.name) == [
                Array(utf8: "global/name.txt"), Array(utf8: "x/override.txt"), Array(utf8: "c.txt"),
                Array(utf8: "global/name.txt"), Array(utf8: "e.txt"),
            ])
        // The g block is not part of the next entry's headers.
        #expect(entries[0].headerOffset == 1024)
    }

    @Test(
        "pax global size applies to following entries until removed; empty x size uses the header")
    func paxGlobalSize() throws {
        var tar = TarWriter(format: .pax)
        tar.addGlobalHeader([.init("size", "1024")])
        let globalSized = tar.count
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "g.bin"), typeflag: UInt8(ascii: "0"), size: 0, format: .pax))
        tar.appendRaw(pattern(1024))
        tar.addFile("h.bin", pattern(10), paxRecords: [.init("size", "")])
        tar.addGlobalHeader([.init("size", "")])
        tar.addFile("i.bin", pattern(20))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries.count == 3)
        #expect(
            entries[0]
                == TarEntry(
                    name: Array(utf8: "g.bin"), kind: .regular, headerOffset: Int64(globalSized),
                    dataOffset: Int64(globalSized + 512), size: 1024))
        #expect(Array(entries.dropFirst()) == Array(tar.entries))
        #expect(entries[1].size == 10)
        #expect(entries[2].size == 20)
    }

    @Test("name precedence: x path > GNU long name > g path > header; Solaris X")
    func namePrecedence() throws {
        func longName(_ name: String) -> [UInt8] {
            let data = Array(utf8: name) + [0]
            return TarWriter.header(
                name: Array(utf8: "././@LongLink"), typeflag: UInt8(ascii: "L"),
                size: Int64(data.count), format: .gnu)
                + TarWriter.padded(data)
        }
        func pax(_ flag: Character, _ records: [TarWriter.PaxRecord]) -> [UInt8] {
            let data = TarWriter.paxData(records)
            return TarWriter.header(
                name: Array(utf8: "PaxHeaders/x"), typeflag: flag.asciiValue!,
                size: Int64(data.count), format: .pax)
                + TarWriter.padded(data)
        }
        func file(_ name: String) -> [UInt8] {
            TarWriter.header(
                name: Array(utf8: name), typeflag: UInt8(ascii: "0"), size: 0, format: .pax)
        }
        var tar = TarWriter()
        tar.appendRaw(longName("L1") + pax("x", [.init("path", "X1")]) + file("H1"))  // 0..<2560
        tar.appendRaw(pax("X", [.init("path", "X2")]) + longName("L2") + file("H2"))  // 2560..<5120
        tar.appendRaw(pax("g", [.init("path", "G")]))  // 5120..<6144
        tar.appendRaw(longName("L3") + file("H3"))  // 6144..<7680
        tar.appendRaw(file("H4"))  // 7680
        tar.appendRaw(pax("x", [.init("path", "")]) + longName("L5") + file("H5"))  // 8192
        tar.appendRaw(pax("x", [.init("path", "")]) + file("H6"))  // 10752
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(
            entries.map { String(decoding: $0.name, as: UTF8.self) } == [
                "X1", "X2", "L3", "G", "L5", "H6",
            ])
        #expect(entries.map(\.headerOffset) == [0, 2560, 6144, 7680, 8192, 10752])
        #expect(entries.map(\.dataOffset) == [2560, 5120, 7680, 8192, 10752, 12288])
    }

    @Test("GNU.sparse.* records mark a regular entry sparse; other records are ignored")
    func paxSparse() throws {
        var tar = TarWriter(format: .pax)
        tar.add(
            name: Array(utf8: "GNUSparseFile.0/s.bin"), typeflag: UInt8(ascii: "0"),
            data: pattern(100), kind: .sparse,
            paxRecords: [
                .init("GNU.sparse.major", "1"), .init("GNU.sparse.minor", "0"),
                .init("GNU.sparse.realsize", "4096"),
            ])
        tar.addFile(
            "plain.bin", pattern(10),
            paxRecords: [.init("SCHILY.xattr.user.k", "v"), .init("atime", "1.5")])
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(entries.map(\.kind) == [.sparse, .regular])
    }

    @Test("pax records may be followed by NUL padding")
    func paxTrailingNULs() throws {
        let data = TarWriter.paxData([.init("path", "padded.txt")]) + [0, 0, 0]
        var tar = TarWriter()
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "PaxHeaders/p"), typeflag: UInt8(ascii: "x"),
                size: Int64(data.count), format: .pax))
        tar.appendRaw(TarWriter.padded(data))
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "p"), typeflag: UInt8(ascii: "0"), size: 0, format: .pax))
        tar.finish()
        #expect(try scanAll(tar.bytes).map(\.name) == [Array(utf8: "padded.txt")])
    }

    // MARK: - Typeflags

    @Test(
        "typeflags: 7 and NUL are regular, 0 or NUL with a trailing slash is a directory, devices")
    func typeflags() throws {
        var tar = TarWriter(format: .ustar)
        tar.add(
            name: Array(utf8: "contiguous.bin"), typeflag: UInt8(ascii: "7"), data: pattern(600),
            kind: .regular)
        tar.add(name: Array(utf8: "old.bin"), typeflag: 0, data: pattern(10), kind: .regular)
        tar.add(name: Array(utf8: "olddir/"), typeflag: 0, kind: .directory)
        tar.add(name: Array(utf8: "zerodir/"), typeflag: UInt8(ascii: "0"), kind: .directory)
        tar.add(name: Array(utf8: "tty"), typeflag: UInt8(ascii: "3"), kind: .characterDevice)
        tar.add(name: Array(utf8: "sda"), typeflag: UInt8(ascii: "4"), kind: .blockDevice)
        tar.add(
            name: Array(utf8: "label"), typeflag: UInt8(ascii: "V"), data: pattern(600),
            kind: .volumeLabel)
        for flag in ["D", "M", "N", "Z", "A"] {
            let value = Character(flag).asciiValue!
            tar.add(
                name: Array(utf8: "other-" + flag), typeflag: value, data: pattern(513),
                kind: .other(value))
        }
        tar.addFile("after.txt", pattern(1))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries == tar.entries)
        #expect(data(of: entries[0], in: tar.bytes) == pattern(600))
    }

    @Test(
        "links, devices, directories and fifos have no data whatever their size field says",
        arguments: ["1", "2", "3", "4", "5", "6"])
    func noDataTypes(flag: String) throws {
        let typeflag = Character(flag).asciiValue!
        var tar = TarWriter(format: .ustar)
        tar.appendRaw(
            TarWriter.header(
                name: Array(utf8: "entry"), typeflag: typeflag, size: 1000, format: .ustar))
        tar.addFile("next.txt", pattern(4))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(entries.count == 2)
        #expect(entries[0].headerOffset == 0)
        #expect(entries[0].dataOffset == 512)
        #expect(entries[0].size == 0)
        #expect(entries[1] == tar.entries[0])
    }

    @Test("GNU old sparse (S): extension blocks are skipped; data follows them")
    func gnuOldSparse() throws {
        var header = TarWriter.header(
            name: Array(utf8: "sparse.img"), typeflag: UInt8(ascii: "S"), size: 700, format: .gnu)
        // One sparse struct (offset 0, 700 bytes), real size 1 MiB, more structs in extensions.
        header.replaceSubrange(386..<398, with: TarWriter.octal(0, width: 12))
        header.replaceSubrange(398..<410, with: TarWriter.octal(700, width: 12))
        header[482] = 1
        header.replaceSubrange(483..<495, with: TarWriter.octal(1 << 20, width: 12))
        TarWriter.setChecksum(&header)
        var firstExtension = [UInt8](repeating: 0, count: 512)
        firstExtension.replaceSubrange(0..<12, with: TarWriter.octal(4096, width: 12))
        firstExtension[504] = 1
        let secondExtension = [UInt8](repeating: 0, count: 512)

        var plain = TarWriter.header(
            name: Array(utf8: "plain-sparse"), typeflag: UInt8(ascii: "S"), size: 10, format: .gnu)
        plain.replaceSubrange(483..<495, with: TarWriter.octal(4096, width: 12))
        TarWriter.setChecksum(&plain)

        var tar = TarWriter(format: .gnu)
        tar.appendRaw(header + firstExtension + secondExtension + TarWriter.padded(pattern(700)))
        tar.appendRaw(plain + TarWriter.padded(pattern(10)))
        tar.addFile("after.txt", pattern(3))
        tar.finish()
        let entries = try scanAll(tar.bytes)
        #expect(
            entries == [
                TarEntry(
                    name: Array(utf8: "sparse.img"), kind: .sparse, headerOffset: 0,
                    dataOffset: 1536, size: 700),
                TarEntry(
                    name: Array(utf8: "plain-sparse"), kind: .sparse, headerOffset: 2560,
                    dataOffset: 3072, size: 10),
            ] + tar.entries)
        #expect(data(of: entries[0], in: tar.bytes) == pattern(700))
    }

    // MARK: - Numbers and checksums

    @Test("base-256 sizes", arguments: [TarWriter.Format.gnu])
    func base256(format: TarWriter.Format) throws {
        var tar = TarWriter(format: format)
        tar.addFile("b256.bin", pattern(700), sizeEncoding: .base256)
        tar.addFile("after.txt", pattern(2))
        tar.finish()
        #expect(try scanAll(tar.bytes) == tar.entries)
        #expect(tar.bytes[124] == 0x80)
    }

    @Test("octal size fields: leading spaces or NULs, space terminator, 12 digits without one")
    func octalVariants() throws {
        for field in [
            "     1750 \0", "\0\0\0\0\0\0\01750\0", "00000001750 ", "000000001750", "1750",
        ] {
            var bytes = Array(utf8: field)
            bytes += [UInt8](repeating: 0, count: 12 - bytes.count)
            var block = TarWriter.header(
                name: Array(utf8: "f"), typeflag: UInt8(ascii: "0"), size: 0, format: .ustar)
            block.replaceSubrange(124..<136, with: bytes)
            TarWriter.setChecksum(&block)
            let entries = try scanAll(block + TarWriter.padded(pattern(1000)))
            #expect(entries.map(\.size) == [1000], "field \(field.debugDescription)")
        }
    }

    @Test("checksums computed with signed chars are accepted")
    func signedChecksum() throws {
        var block = TarWriter.header(
            name: [0xe9, 0xe8, 0xff, 0x2e, 0x74], typeflag: UInt8(ascii: "0"), size: 2,
            format: .ustar)
        TarWriter.setChecksum(&block, signed: true)
        var unsignedCopy = block
        TarWriter.setChecksum(&unsignedCopy)
        #expect(block[148..<156] != unsignedCopy[148..<156])  // the signed sum really differs
        let entries = try scanAll(block + TarWriter.padded([1, 2]))
        #expect(entries.map(\.name) == [[0xe9, 0xe8, 0xff, 0x2e, 0x74]])
    }

    // MARK: - The end of the archive

    @Test("a lone zero block ends the archive; garbage after it is ignored")
    func loneZeroBlockThenGarbage() throws {
        var tar = TarWriter()
        tar.addFile("a.txt", pattern(10))
        tar.finish(zeroBlocks: 1)
        tar.appendRaw([UInt8](repeating: 0xab, count: 1000))
        var scanner = TarScanner(InMemoryBytes(tar.bytes))
        #expect(try scanner.next() == tar.entries[0])
        #expect(try scanner.next() == nil)
        #expect(scanner.offset == 1024)
    }

    @Test("a missing end marker, or a file ending inside the last padding, is a fine end")
    func missingEndMarker() throws {
        var tar = TarWriter()
        tar.addFile("a.txt", pattern(10))
        tar.addFile("b.txt", pattern(100))
        #expect(try scanAll(tar.bytes) == tar.entries)
        for cut in [1536 + 100, 1536 + 101, 1536 + 511] {
            var truncated = tar
            truncated.truncate(to: cut)
            var scanner = TarScanner(InMemoryBytes(truncated.bytes))
            #expect(try scanner.next() == tar.entries[0])
            #expect(try scanner.next() == tar.entries[1])
            #expect(try scanner.next() == nil)
            #expect(scanner.offset == Int64(cut))
        }
    }

    @Test("an archive of zero blocks only has no entries")
    func onlyZeroBlocks() throws {
        #expect(try scanAll([UInt8](repeating: 0, count: 10240)) == [])
        #expect(try scanAll([UInt8](repeating: 0, count: 512)) == [])
    }

    @Test("after the end, next() keeps returning nil")
    func endIsSticky() throws {
        var tar = TarWriter()
        tar.addFile("a.txt", [1])
        tar.finish()
        var scanner = TarScanner(InMemoryBytes(tar.bytes))
        _ = try scanner.next()
        #expect(try scanner.next() == nil)
        #expect(try scanner.next() == nil)
    }

    // MARK: - Beyond 8 GiB

    @Test("a base-256 size beyond 8 GiB followed by EOF is a truncated member with the exact end")
    func hugeSizeTruncated() {
        let size: Int64 = 10 << 30 + 123
        let block = TarWriter.header(
            name: Array(utf8: "huge.bin"), typeflag: UInt8(ascii: "0"), size: size, format: .gnu,
            sizeEncoding: .base256)
        let error = scanError(block + pattern(100))
        #expect(error == TarError(.truncatedMember(needed: 512 + size, fileSize: 612), at: 0))
    }

    @Test("offsets beyond 8 GiB: base-256 size, then a pax size, in a 24 GiB source")
    func hugeOffsets() throws {
        let first: Int64 = 9 << 30 + 100
        let second: Int64 = 10 << 30 + 1
        let secondHeader = 512 + (first + 511) / 512 * 512
        let paxData = TarWriter.paxData([
            .init("size", String(second)), .init("path", "big/second.bin"),
        ])
        var blocks: [Int64: [UInt8]] = [
            0: TarWriter.header(
                name: Array(utf8: "big/first.bin"), typeflag: UInt8(ascii: "0"), size: first,
                format: .gnu, sizeEncoding: .base256),
            secondHeader: TarWriter.header(
                name: Array(utf8: "PaxHeaders/second.bin"), typeflag: UInt8(ascii: "x"),
                size: Int64(paxData.count), format: .pax),
        ]
        blocks[secondHeader + 512] = paxData
        blocks[secondHeader + 1024] = TarWriter.header(
            name: Array(utf8: "second.bin"), typeflag: UInt8(ascii: "0"), size: 0, format: .pax)
        let thirdHeader = secondHeader + 1536 + (second + 511) / 512 * 512
        blocks[thirdHeader] = TarWriter.header(
            name: Array(utf8: "third.txt"), typeflag: UInt8(ascii: "0"), size: 1, format: .ustar)
        let source = SparseBytes(byteCount: 24 << 30, blocks: blocks)

        var scanner = TarScanner(source)
        #expect(
            try scanner.next()
                == TarEntry(
                    name: Array(utf8: "big/first.bin"), kind: .regular, headerOffset: 0,
                    dataOffset: 512, size: first))
        #expect(
            try scanner.next()
                == TarEntry(
                    name: Array(utf8: "big/second.bin"), kind: .regular, headerOffset: secondHeader,
                    dataOffset: secondHeader + 1536, size: second))
        #expect(
            try scanner.next()
                == TarEntry(
                    name: Array(utf8: "third.txt"), kind: .regular, headerOffset: thirdHeader,
                    dataOffset: thirdHeader + 512, size: 1))
        #expect(try scanner.next() == nil)
        #expect(scanner.offset == thirdHeader + 1024)
        #expect(scanner.statistics.headerBlocks == 5)
    }
}

import ShardTestSupport
import Testing

@testable import ShardCore

@Suite("MemberHeaderCheck: a member's own header against its index row")
struct MemberHeaderCheckTests {
    /// The check of `block` against key `key`, extension `ext` and `length`.
    func check(
        _ block: [UInt8], length: Int64, key: String, ext: String, extended: Bool = false
    ) -> MemberHeaderCheck.Mismatch? {
        check(block, length: length, key: Array(key.utf8), ext: ext, extended: extended)
    }

    func check(
        _ block: [UInt8], length: Int64, key: [UInt8], ext: String, extended: Bool = false
    ) -> MemberHeaderCheck.Mismatch? {
        block.withUnsafeBytes { b in
            key.withUnsafeBytes { k in
                Array(ext.utf8).withUnsafeBytes { e in
                    MemberHeaderCheck.check(b, length: length, key: k, ext: e, extended: extended)
                }
            }
        }
    }

    /// A header block for `name` (split into prefix and name for ustar and star).
    func header(
        _ name: String, size: Int64 = 3, format: TarWriter.Format = .ustar, typeflag: UInt8 = UInt8(ascii: "0")
    ) -> [UInt8] {
        let bytes = Array(name.utf8)
        let (prefix, rest) =
            format == .ustar || format == .star
            ? TarWriter.split(bytes, prefixLimit: format == .star ? 131 : 155) : ([], bytes)
        return TarWriter.header(name: rest, typeflag: typeflag, size: size, format: format, prefix: prefix)
    }

    /// A header block with the raw `name` and `prefix` fields.
    func rawHeader(name: [UInt8], prefix: [UInt8] = [], size: Int64 = 3) -> [UInt8] {
        TarWriter.header(name: name, typeflag: UInt8(ascii: "0"), size: size, format: .ustar, prefix: prefix)
    }

    @Test("the header of a plain member matches, in every format")
    func plain() {
        for format in TarWriter.Format.allCases {
            #expect(check(header("000001.jpg", format: format), length: 3, key: "000001", ext: "jpg") == nil)
            #expect(
                check(header("d/e/000001.seg.png", format: format), length: 3, key: "d/e/000001", ext: "seg.png") == nil
            )
        }
    }

    @Test("ustar and star names split into prefix and name are joined")
    func prefix() {
        let folders = String(repeating: "folder/", count: 15)
        let name = folders + "000001.jpg"
        #expect(name.utf8.count > 100)
        let ustar = header(name, format: .ustar)
        #expect(ustar[345] != 0)  // the prefix field is used
        #expect(check(ustar, length: 3, key: folders + "000001", ext: "jpg") == nil)
        let shortFolders = String(repeating: "f/", count: 40)
        #expect(
            check(
                header(shortFolders + "000001.jpg", format: .star), length: 3, key: shortFolders + "000001", ext: "jpg")
                == nil)
        // Without the prefix the name alone is not the member's.
        #expect(
            check(ustar, length: 3, key: "000001", ext: "jpg")
                == .name(header: Array(name.utf8), expected: Array("000001.jpg".utf8)))
    }

    @Test("upper-case extensions match the lower-cased indexed extension")
    func upperCase() {
        #expect(check(header("000001.JPG"), length: 3, key: "000001", ext: "jpg") == nil)
        #expect(check(header("a/B.Seg.PNG"), length: 3, key: "a/B", ext: "seg.png") == nil)
        // The key keeps its case.
        #expect(check(header("A.jpg"), length: 3, key: "a", ext: "jpg") != nil)
    }

    @Test("a GNU long name: the header holds the first 100 bytes")
    func gnuLongName() {
        let key = String(repeating: "k", count: 150)
        let block = rawHeader(name: Array((key + ".jpg").utf8.prefix(100)))
        #expect(check(block, length: 3, key: key, ext: "jpg", extended: true) == nil)
        // Without the long-name block before it, the header's name must be whole.
        #expect(check(block, length: 3, key: key, ext: "jpg", extended: false) != nil)
        // Another long name is refused.
        let other = String(repeating: "m", count: 150)
        #expect(check(block, length: 3, key: other, ext: "jpg", extended: true) != nil)
    }

    @Test("a pax path from Python's tarfile: '?' for each character outside ASCII, the first 100 bytes")
    func pythonPax() {
        // Python writes `name.encode("ascii", "replace")[:100]` in the ustar header.
        let key = "données/échantillon-" + String(repeating: "é", count: 10) + String(repeating: "x", count: 90)
        let replaced = String(key.unicodeScalars.map { $0.isASCII ? Character($0) : "?" }) + ".jpg"
        let block = rawHeader(name: Array(replaced.utf8.prefix(100)))
        #expect(check(block, length: 3, key: key, ext: "jpg", extended: true) == nil)
        // A short name outside ASCII: '?' stands for one two-byte character.
        #expect(
            check(rawHeader(name: Array("caf?.jpg".utf8)), length: 3, key: "café", ext: "jpg", extended: true) == nil)
        #expect(
            check(rawHeader(name: Array("caf??.jpg".utf8)), length: 3, key: "café", ext: "jpg", extended: true) != nil)
        // Go's archive/tar leaves such characters out.
        #expect(
            check(rawHeader(name: Array("caf.jpg".utf8)), length: 3, key: "café", ext: "jpg", extended: true) == nil)
    }

    @Test("libarchive's shortened names: the start of the folders in the prefix, the end of the file name")
    func libarchiveShortened() {
        let folders = "aaaa/bbbb/cccc/"
        let file = String(repeating: "x", count: 120)
        let key = folders + file
        // Prefix "aaaa", name "bbbb/" + the file name cut to fit, its extension kept.
        let name = Array(("bbbb/" + String(repeating: "x", count: 90) + ".jpg").utf8)
        let block = rawHeader(name: name, prefix: Array("aaaa".utf8))
        #expect(check(block, length: 3, key: key, ext: "jpg", extended: true) == nil)
        #expect(check(block, length: 3, key: "zzzz/" + file, ext: "jpg", extended: true) != nil)
        // The extension must be there (in any case) when the name keeps it.
        #expect(check(block, length: 3, key: key, ext: "png", extended: true) != nil)
        let upper = rawHeader(
            name: Array(("bbbb/" + String(repeating: "x", count: 90) + ".JPG").utf8), prefix: Array("aaaa".utf8))
        #expect(check(upper, length: 3, key: key, ext: "jpg", extended: true) == nil)
    }

    @Test("after a pax header, a short ASCII name must still be whole (webdataset's writer adds mtime records)")
    func shortNameAfterPax() {
        #expect(check(header("000001.jpg"), length: 3, key: "000001", ext: "jpg", extended: true) == nil)
        #expect(
            check(header("000002.jpg"), length: 3, key: "000001", ext: "jpg", extended: true)
                == .name(header: Array("000002.jpg".utf8), expected: Array("000001.jpg".utf8)))
        // A subsequence is not enough for a name a producer had no reason to shorten.
        #expect(check(header("00001.jpg"), length: 3, key: "000001", ext: "jpg", extended: true) != nil)
    }

    @Test("checksums: a damaged block, a zero block, data bytes, the signed sum")
    func checksums() {
        var block = header("000001.jpg")
        block[0] = UInt8(ascii: "1")
        let sum = block.withUnsafeBytes { TarHeader.checksum(of: $0) }
        let stored = header("000001.jpg").withUnsafeBytes { TarHeader.checksum(of: $0) }
        #expect(
            check(block, length: 3, key: "100001", ext: "jpg")
                == .checksum(stored: stored.unsigned, computed: sum.unsigned))
        #expect(
            check([UInt8](repeating: 0, count: 512), length: 3, key: "000001", ext: "jpg")
                == .checksum(stored: 0, computed: 256))
        #expect(
            check([UInt8](repeating: 0x41, count: 512), length: 3, key: "000001", ext: "jpg")
                == .checksum(stored: nil, computed: 0x41 * 504 + 256))
        // Historic tars stored the sum of signed bytes.
        var signed = header("0000\u{e9}.jpg")
        TarWriter.setChecksum(&signed, signed: true)
        #expect(check(signed, length: 3, key: "0000\u{e9}", ext: "jpg") == nil)
    }

    @Test("the fast unsigned checksum equals TarHeader's on any bytes (all 0xff, seeded random)")
    func fastChecksum() {
        var rng = SplitMix64(seed: 42)
        var blocks: [[UInt8]] = [[UInt8](repeating: 0xff, count: 512), [UInt8](repeating: 0, count: 512)]
        for _ in 0..<200 { blocks.append((0..<512).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
        for block in blocks {
            block.withUnsafeBytes { b in
                #expect(MemberHeaderCheck.unsignedChecksum(b) == TarHeader.checksum(of: b).unsigned)
            }
        }
    }

    @Test("the name field alone is not enough when the prefix field holds folders")
    func prefixAndExactName() {
        let block = rawHeader(name: Array("000001.jpg".utf8), prefix: Array("dir".utf8))
        #expect(
            check(block, length: 3, key: "000001", ext: "jpg")
                == .name(header: Array("dir/000001.jpg".utf8), expected: Array("000001.jpg".utf8)))
        #expect(check(block, length: 3, key: "dir/000001", ext: "jpg") == nil)
        // A GNU header has no prefix field: those bytes are something else.
        var gnu = TarWriter.header(name: Array("000001.jpg".utf8), typeflag: UInt8(ascii: "0"), size: 3, format: .gnu)
        gnu[345] = 0x31
        TarWriter.setChecksum(&gnu)
        #expect(check(gnu, length: 3, key: "000001", ext: "jpg") == nil)
        // A name of exactly 100 bytes fills the field without a NUL.
        let key = String(repeating: "k", count: 96)
        #expect(check(rawHeader(name: Array((key + ".jpg").utf8)), length: 3, key: key, ext: "jpg") == nil)
    }

    @Test("the size field must be the indexed length; after a pax header it may be 0")
    func sizes() {
        #expect(check(header("a.jpg", size: 3), length: 4, key: "a", ext: "jpg") == .size(header: 3, indexed: 4))
        #expect(check(header("a.jpg", size: 0), length: 4, key: "a", ext: "jpg") == .size(header: 0, indexed: 4))
        #expect(check(header("a.jpg", size: 0), length: 4, key: "a", ext: "jpg", extended: true) == nil)
        #expect(
            check(header("a.jpg", size: 5), length: 4, key: "a", ext: "jpg", extended: true)
                == .size(header: 5, indexed: 4))
        // GNU base-256 sizes.
        let big = TarWriter.header(
            name: Array("a.bin".utf8), typeflag: UInt8(ascii: "0"), size: 1 << 40, format: .gnu, sizeEncoding: .base256)
        #expect(check(big, length: 1 << 40, key: "a", ext: "bin") == nil)
        // Sizes the octal field cannot hold may be anything after a pax header.
        #expect(check(header("a.bin", size: 7), length: 1 << 40, key: "a", ext: "bin", extended: true) == nil)
        var garbage = header("a.jpg")
        garbage.replaceSubrange(124..<136, with: Array("12x45678901\0".utf8))
        TarWriter.setChecksum(&garbage)
        #expect(check(garbage, length: 3, key: "a", ext: "jpg") == .size(header: nil, indexed: 3))
    }

    @Test(
        "typeflags: regular files (0, NUL, 7) match, any other entry does not",
        arguments: [
            (UInt8(ascii: "0"), true), (0, true), (UInt8(ascii: "7"), true), (UInt8(ascii: "1"), false),
            (UInt8(ascii: "2"), false), (UInt8(ascii: "5"), false), (UInt8(ascii: "x"), false),
            (UInt8(ascii: "g"), false), (UInt8(ascii: "L"), false), (UInt8(ascii: "S"), false),
        ])
    func typeflags(typeflag: UInt8, matches: Bool) {
        let result = check(header("a.jpg", typeflag: typeflag), length: 3, key: "a", ext: "jpg")
        #expect(result == (matches ? nil : .type(typeflag: typeflag)))
    }

    @Test("descriptions are one line, naming what was found and what was expected")
    func descriptions() {
        #expect(
            MemberHeaderCheck.Mismatch.name(header: Array("000002.jpg".utf8), expected: Array("000001.jpg".utf8))
                .description == "the header there names '000002.jpg', the index expects '000001.jpg'")
        #expect(
            MemberHeaderCheck.Mismatch.name(header: Array("a\nb'.jpg".utf8), expected: [0xff, 0x0a]).description
                == "the header there names 'a\\x0ab\\'.jpg', the index expects '\\xff\\x0a'")
        #expect(
            MemberHeaderCheck.Mismatch.size(header: 3, indexed: 4).description
                == "the header there gives size 3, the index 4")
        #expect(
            MemberHeaderCheck.Mismatch.size(header: nil, indexed: 4).description
                == "the header there gives size not a number, the index 4")
        #expect(
            MemberHeaderCheck.Mismatch.checksum(stored: 1, computed: 2).description
                == "no valid tar header precedes the member (checksum field 1, computed 2)")
        #expect(
            MemberHeaderCheck.Mismatch.type(typeflag: UInt8(ascii: "5")).description
                == "the header there is not a regular file's (typeflag '5')")
    }

    @Test("message text: UTF-8 kept, control bytes and invalid bytes escaped")
    func messageText() {
        #expect(MessageText.escaped(Array("café\tx\r\n\\".utf8)) == "café\\x09x\\x0d\\x0a\\")
        #expect(MessageText.escaped([0x66, 0xff, 0x01, 0x7f]) == "f\\xff\\x01\\x7f")
        #expect(MessageText.quoted(Array("it's".utf8)) == "'it\\'s'")
    }
}

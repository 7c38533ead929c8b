import ShardTestSupport
import Testing

@testable import ShardCore

@Suite("TarHeader: the 512-byte block codec")
struct TarHeaderTests {
    func number(_ field: [UInt8]) -> TarHeader.Number {
        field.withUnsafeBytes { TarHeader.number(in: $0, 0..<field.count) }
    }

    @Test(
        "octal fields",
        arguments: [
            ("0000644\0", TarHeader.Number.value(0o644)),
            ("    644 ", .value(0o644)),
            ("\0\0\0\0644\0", .value(0o644)),
            ("\0\0\0\0\0\0\0\0", .value(0)),
            ("        ", .value(0)),
            ("77777777777\0", .value(0o77777777777)),
            ("777777777777", .value(0o777777777777)),
            ("1 2", .value(1)),
            ("12x", .invalid),
            ("8", .invalid),
            (" -1", .invalid),
        ])
    func octal(text: String, expected: TarHeader.Number) {
        #expect(number(Array(text.utf8)) == expected)
    }

    @Test("base-256 fields")
    func base256() {
        #expect(number([0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x80, 0, 0, 0x05]) == .value(0x02_8000_0005))
        #expect(
            number(
                [0x80] + [UInt8](repeating: 0, count: 3) + [0x7f]
                    + [UInt8](repeating: 0xff, count: 7)) == .value(Int64.max))
        #expect(number([0x80, 0, 0, 0x80] + [UInt8](repeating: 0, count: 8)) == .invalid)
        #expect(
            number([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                == .negative)
        #expect(number([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) == .invalid)  // 2^88 + 1
        #expect(number([0x81, 0, 0, 0, 0, 0, 0, 1]) == .value(1 << 56 + 1))
    }

    @Test("checksums: unsigned and signed sums, the field counted as spaces, zero blocks")
    func checksum() {
        var block = [UInt8](repeating: 0, count: 512)
        block[0] = 0xff
        block[1] = 0x41
        block[150] = 0xff  // inside the checksum field: ignored
        let sums = block.withUnsafeBytes { TarHeader.checksum(of: $0) }
        #expect(sums.unsigned == 0xff + 0x41 + 256)
        #expect(sums.signed == -1 + 0x41 + 256)
        #expect(!sums.isZeroBlock)
        let zero = [UInt8](repeating: 0, count: 512).withUnsafeBytes { TarHeader.checksum(of: $0) }
        #expect(zero.isZeroBlock)
    }

    @Test("formats from the magic")
    func formats() {
        func format(_ block: [UInt8]) -> TarHeader.Format {
            block.withUnsafeBytes { TarHeader.format(of: $0) }
        }
        let name = Array("n".utf8)
        #expect(format(TarWriter.header(name: name, typeflag: 0x30, size: 0, format: .v7)) == .v7)
        #expect(
            format(TarWriter.header(name: name, typeflag: 0x30, size: 0, format: .ustar)) == .ustar)
        #expect(
            format(TarWriter.header(name: name, typeflag: 0x30, size: 0, format: .star)) == .star)
        #expect(
            format(TarWriter.header(name: name, typeflag: 0x30, size: 0, format: .gnu)) == .oldGNU)
        var odd = TarWriter.header(name: name, typeflag: 0x30, size: 0, format: .gnu)
        odd[263] = 0x30  // "ustar 0\0" is neither
        #expect(format(odd) == .v7)
    }
}

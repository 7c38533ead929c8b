import ShardTestSupport
import Testing

@testable import ShardCompression

/// The decoder checks gzip trailers with its own CRC-32 (carry-less multiplication where the CPU
/// has it): it must equal zlib's for every length, alignment and starting value.
@Suite("GzipCRC: the same CRC-32 as zlib's")
struct GzipCRCTests {
    let fixture: CompressionFixture

    init() throws { fixture = try CompressionFixture() }

    @Test("each member of a multi-member file is checked: a damaged first trailer is refused at its offset")
    func membersChecked() throws {
        let data = CompressionFixture.data(300_000, seed: 12)
        let first = try CompressionFixture.read(
            try fixture.compressed(Array(data[..<100_000]), "gzip -c", name: "a.gz"))
        let second = try CompressionFixture.read(
            try fixture.compressed(Array(data[100_000...]), "gzip -c", name: "b.gz"))
        let whole = try fixture.file(first + second, name: "ab.gz")
        #expect(try CompressionFixture.pass(whole, .gzip).0 == data)
        for (at, kind) in [
            (first.count - 8, "CRC-32 mismatch in the gzip member's trailer (incorrect data check)"),
            (first.count - 4, "length mismatch in the gzip member's trailer (incorrect length check)"),
        ] {
            var damaged = first + second
            damaged[at + 1] ^= 0x40
            let path = try fixture.file(damaged, name: "damaged.gz")
            #expect(
                try CompressionFixture.passError(path, .gzip)
                    == DecompressionError(format: .gzip, path: path, compressedOffset: Int64(at), kind: .corrupt(kind)))
        }
    }

    @Test("every length up to 1,100 at every alignment up to 15, chained, and large buffers")
    func sameAsZlib() {
        let data = CompressionFixture.data(1 << 20, seed: 11)
        // The carry-less path only where the CPU has it (x86-64 with PCLMULQDQ); elsewhere update
        // takes zlib's, which is compared too.
        let clmul = GzipCRC.hasCarrylessMultiply
        data.withUnsafeBytes { all in
            for start in 0..<16 {
                for length in 0...1100 {
                    let bytes = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    let seed = UInt32(truncatingIfNeeded: length &* 2_654_435_761)
                    let expected = Zlib.crc32(seed, bytes)
                    if clmul { #expect(GzipCRC.update(seed, bytes, carrylessMultiply: true) == expected) }
                    #expect(GzipCRC.update(seed, bytes, carrylessMultiply: false) == expected)
                }
            }
            for length in [4096, 65_536 + 48, (1 << 20) - 3] {
                let bytes = UnsafeRawBufferPointer(rebasing: all[3..<(3 + length - 3)])
                #expect(GzipCRC.update(0, bytes) == Zlib.crc32(0, bytes))
                // In two pieces, split anywhere: the same as in one.
                let split = length / 3 + 5
                let first = UnsafeRawBufferPointer(rebasing: bytes[..<split])
                let second = UnsafeRawBufferPointer(rebasing: bytes[split...])
                #expect(GzipCRC.update(GzipCRC.update(0, first), second) == Zlib.crc32(0, bytes))
            }
        }
        // Known values: the empty string, and "123456789" (the CRC-32 check value).
        #expect(Array("123456789".utf8).withUnsafeBytes { GzipCRC.update(0, $0) } == 0xCBF4_3926)
        #expect([UInt8]().withUnsafeBytes { GzipCRC.update(0, $0) } == 0)
    }
}

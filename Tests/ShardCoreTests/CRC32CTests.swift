import Testing

@testable import ShardCore

@Suite("CRC-32C")
struct CRC32CTests {
    /// Bit by bit, straight from the definition (reflected polynomial 0x82F63B78): independent of
    /// the tables under test.
    static func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    static func bytes(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    @Test("the standard check value: \"123456789\" -> 0xE3069283")
    func checkValue() {
        #expect(CRC32C.checksum(of: Array("123456789".utf8)) == 0xE306_9283)
        #expect(Self.reference(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("known vectors (RFC 3720 B.4): 32 zero bytes, 32 0xFF bytes, 0 to 31 ascending, none")
    func rfc3720Vectors() {
        #expect(CRC32C.checksum(of: [UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum(of: [UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum(of: (0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum(of: [UInt8]()) == 0)
        #expect(CRC32C().value == 0)
    }

    @Test(
        "every length 0 to 300 at every alignment 0 to 7 matches the bitwise reference, in Swift and with the instruction"
    )
    func lengthsAndAlignments() {
        let data = Self.bytes(320, seed: 7)
        let implementations = CRC32C.isHardwareAccelerated ? [false, true] : [false]
        for hardware in implementations {
            for start in 0..<8 {
                for length in 0...300 {
                    let slice = data[start..<(start + length)]
                    var crc = CRC32C()
                    slice.withUnsafeBytes { crc.update($0, hardware: hardware) }
                    #expect(
                        crc.value == Self.reference(Array(slice)),
                        "hardware \(hardware) start \(start) length \(length)")
                }
            }
        }
        #expect(CRC32C.checksum(of: data[3..<300]) == Self.reference(Array(data[3..<300])))
    }

    @Test("the Swift tables and the instruction agree on the check value and on 1 MiB fed in uneven pieces")
    func implementationsAgree() {
        let data = Self.bytes(1 << 20, seed: 11)
        let whole = Self.reference(data)
        for hardware in CRC32C.isHardwareAccelerated ? [false, true] : [false] {
            var check = CRC32C()
            Array("123456789".utf8).withUnsafeBytes { check.update($0, hardware: hardware) }
            #expect(check.value == 0xE306_9283, "hardware \(hardware)")
            var crc = CRC32C()
            var i = 0
            var step = 1
            while i < data.count {
                let end = min(data.count, i + step)
                data[i..<end].withUnsafeBytes { crc.update($0, hardware: hardware) }
                i = end
                step = step * 3 + 1
            }
            #expect(crc.value == whole, "hardware \(hardware)")
        }
    }

    @Test("incremental updates, split anywhere, give the checksum of the whole")
    func incremental() {
        let data = Self.bytes(5000, seed: 3)
        let whole = Self.reference(data)
        #expect(CRC32C.checksum(of: data) == whole)
        for cut in [0, 1, 7, 8, 9, 511, 512, 4096, 4999, 5000] {
            var crc = CRC32C()
            crc.update(data[..<cut])
            crc.update(data[cut...])
            #expect(crc.value == whole, "cut at \(cut)")
        }
        var byteByByte = CRC32C()
        for b in data { byteByByte.update([b]) }
        #expect(byteByByte.value == whole)
        var raw = CRC32C()
        data.withUnsafeBytes { raw.update($0) }
        #expect(raw.value == whole)
        // A sequence without contiguous storage takes the byte-at-a-time path.
        var lazy = CRC32C()
        lazy.update(data.lazy.map { $0 })
        #expect(lazy.value == whole)
    }
}

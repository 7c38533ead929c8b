/// CRC-32C (Castagnoli, reflected polynomial `0x82F63B78`, as in iSCSI, ext4 and SSE4.2's `crc32`
/// instruction), in pure Swift with eight tables ("slicing by 8"). It guards the location file:
/// unlike a hash, it detects every error burst of up to 32 bits (so every damaged byte) for certain.
///
/// Checksums chain: `checksum(b, continuing: checksum(a)) == checksum(a + b)`.
///
/// ```swift
/// let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: nil, count: 0))   // 0
/// ```
///
/// - Complexity: O(n), about one byte a cycle: a 64-byte slot takes well under 100 ns.
enum CRC32C {
    /// The checksum of `bytes`, continuing from the checksum `crc` of the bytes before them.
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        guard var p = bytes.baseAddress else { return crc }
        var n = bytes.count
        table.withUnsafeBufferPointer { t in
            while n >= 8 {
                let word = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)) ^ UInt64(c)
                let lo = UInt32(truncatingIfNeeded: word)
                let hi = UInt32(truncatingIfNeeded: word >> 32)
                c =
                    t[7 * 256 + Int(lo & 0xff)] ^ t[6 * 256 + Int(lo >> 8 & 0xff)]
                    ^ t[5 * 256 + Int(lo >> 16 & 0xff)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xff)] ^ t[2 * 256 + Int(hi >> 8 & 0xff)]
                    ^ t[1 * 256 + Int(hi >> 16 & 0xff)] ^ t[Int(hi >> 24)]
                p += 8
                n -= 8
            }
            while n > 0 {
                c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xff)] ^ (c >> 8)
                p += 1
                n -= 1
            }
        }
        return ~c
    }

    /// The checksum of the little-endian bytes of `value`, continuing from `crc`.
    static func checksum(littleEndian value: UInt64, continuing crc: UInt32 = 0) -> UInt32 {
        withUnsafeBytes(of: value.littleEndian) { checksum($0, continuing: crc) }
    }

    /// `table[k * 256 + b]`: the CRC of byte `b` followed by `k` zero bytes.
    private static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for b in 0..<256 {
            var c = UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[b] = c
        }
        for k in 1..<8 {
            for b in 0..<256 {
                let previous = t[(k - 1) * 256 + b]
                t[k * 256 + b] = t[Int(previous & 0xff)] ^ (previous >> 8)
            }
        }
        return t
    }()
}

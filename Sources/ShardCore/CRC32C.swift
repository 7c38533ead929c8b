import CShardCRC32C

/// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF),
/// the checksum `shardstore ingest --checksums` records per member and `shardstore verify --data`
/// compares; the same function as iSCSI's, ext4's and `crc32c` in Python's `crc32c` package.
///
/// With the CPU's `crc32` instruction where there is one (x86-64 with SSE4.2, through the tiny
/// `CShardCRC32C` target: about 5x faster), else in Swift, slicing-by-8 (eight table lookups per
/// 8 bytes). Both give the same values; ``isHardwareAccelerated`` says which one runs.
///
/// ```swift
/// CRC32C.checksum(of: Array("123456789".utf8))  // 0xE3069283
///
/// var crc = CRC32C()
/// crc.update(Array("1234".utf8))
/// crc.update(Array("56789".utf8))
/// crc.value                                      // 0xE3069283
/// ```
///
/// - Complexity: O(n) in the bytes fed; no allocation after the tables are built (once per
///   process).
public struct CRC32C: Sendable, Equatable {
    /// The running register (the checksum before its final XOR).
    private var register: UInt32 = 0xFFFF_FFFF

    /// A checksum of no bytes yet.
    public init() {}

    /// A checksum continuing from `crc`, the checksum of the bytes before (0 for none): feeding
    /// `b` then gives the checksum of `a + b` when `crc` is that of `a`.
    public init(continuing crc: UInt32) { register = ~crc }

    /// The checksum of every byte fed so far (0 for none).
    public var value: UInt32 { ~register }

    /// Whether this CPU's `crc32` instruction computes the checksums (else the Swift tables).
    public static let isHardwareAccelerated = shardstore_crc32c_hardware_available() == 1

    /// Feeds `bytes`, continuing the checksum: feeding `a` then `b` gives the checksum of `a + b`.
    ///
    /// - Complexity: O(bytes.count).
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        update(bytes, hardware: Self.isHardwareAccelerated)
    }

    /// ``update(_:)`` with the implementation chosen: the instruction (`hardware`, only where
    /// ``isHardwareAccelerated``) or the Swift tables. Tests run both.
    mutating func update(_ bytes: UnsafeRawBufferPointer, hardware: Bool) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if hardware {
            register = shardstore_crc32c_hardware_update(register, base, bytes.count)
            return
        }
        register = CRC32CTables.table.withUnsafeBufferPointer { t in
            Self.update(register, base, bytes.count, t.baseAddress!)
        }
    }

    /// Feeds the bytes of `bytes` (an array, a slice of one, or any sequence of bytes).
    ///
    /// - Complexity: O(bytes.count).
    public mutating func update<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            for byte in bytes { withUnsafeBytes(of: byte) { update($0) } }
        }
    }

    /// The CRC-32C of `bytes`.
    ///
    /// - Complexity: O(bytes.count).
    public static func checksum(of bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// The CRC-32C of `bytes`, continuing from the checksum `crc` of the bytes before them:
    /// `checksum(b, continuing: checksum(a))` is the checksum of `a + b`.
    ///
    /// ```swift
    /// let crc = CRC32C.checksum(slot, continuing: CRC32C.checksum(littleEndian: UInt64(index)))
    /// ```
    ///
    /// - Complexity: O(bytes.count).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = CRC32C(continuing: crc)
        c.update(bytes)
        return c.value
    }

    /// The CRC-32C of the 8 little-endian bytes of `value`, continuing from `crc`.
    ///
    /// - Complexity: O(1).
    public static func checksum(littleEndian value: UInt64, continuing crc: UInt32 = 0) -> UInt32 {
        withUnsafeBytes(of: value.littleEndian) { checksum($0, continuing: crc) }
    }

    /// The CRC-32C of `bytes`.
    ///
    /// - Complexity: O(bytes.count).
    public static func checksum<Bytes: Sequence<UInt8>>(of bytes: Bytes) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// Slicing-by-8 over `count` bytes at `p`; `t` holds the eight 256-entry tables back to back.
    @inline(__always)
    private static func update(
        _ start: UInt32, _ p: UnsafeRawPointer, _ count: Int, _ t: UnsafePointer<UInt32>
    ) -> UInt32 {
        var crc = start
        var i = 0
        // Bytes one at a time up to an 8-byte boundary, so the loads below are aligned.
        while i < count, Int(bitPattern: p + i) & 7 != 0 {
            crc = t[Int((crc ^ UInt32(p.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
            i += 1
        }
        while count - i >= 8 {
            let word = UInt64(littleEndian: p.load(fromByteOffset: i, as: UInt64.self))
            let lo = UInt32(truncatingIfNeeded: word) ^ crc
            let hi = UInt32(truncatingIfNeeded: word >> 32)
            crc =
                t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
            i += 8
        }
        while i < count {
            crc = t[Int((crc ^ UInt32(p.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
            i += 1
        }
        return crc
    }
}

/// The slicing-by-8 tables: `table[k * 256 + b]` is the CRC register after byte `b` followed by
/// `k` zero bytes.
enum CRC32CTables {
    static let table: [UInt32] = {
        let polynomial: UInt32 = 0x82F6_3B78
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for b in 0..<256 {
            var crc = UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ polynomial : crc >> 1 }
            t[b] = crc
        }
        for k in 1..<8 {
            for b in 0..<256 {
                let previous = t[(k - 1) * 256 + b]
                t[k * 256 + b] = t[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return t
    }()
}

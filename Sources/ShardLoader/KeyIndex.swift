/// An open-addressing hash table from key bytes to positions, over a ``LocationTable``'s keys:
/// 4 bytes a slot, at most half full.
struct KeyIndex: Sendable {
    /// `position + 1`, or 0 for an empty slot.
    private var slots: [UInt32]
    private let mask: Int

    /// Indexes every key of `table`.
    ///
    /// - Complexity: O(samples + key bytes).
    init(_ table: LocationTable) {
        var capacity = 16
        while capacity < table.count * 2 { capacity <<= 1 }
        mask = capacity - 1
        slots = [UInt32](repeating: 0, count: capacity)
        table.keyBytes.withUnsafeBytes { keys in
            for p in 0..<table.count {
                let key = UnsafeRawBufferPointer(rebasing: keys[Int(table.keyStarts[p])..<Int(table.keyStarts[p + 1])])
                var slot = Self.hash(key) & mask
                while slots[slot] != 0 { slot = (slot + 1) & mask }
                slots[slot] = UInt32(p + 1)
            }
        }
    }

    /// Every position whose key is `key`, ascending (more than one only for duplicates kept at ingest).
    ///
    /// - Complexity: O(1) expected.
    func positions(of key: [UInt8], in table: LocationTable) -> [Int] {
        var found: [Int] = []
        key.withUnsafeBytes { wanted in
            table.keyBytes.withUnsafeBytes { keys in
                var slot = Self.hash(wanted) & mask
                while slots[slot] != 0 {
                    let p = Int(slots[slot] - 1)
                    let candidate = keys[Int(table.keyStarts[p])..<Int(table.keyStarts[p + 1])]
                    if candidate.elementsEqual(wanted) { found.append(p) }
                    slot = (slot + 1) & mask
                }
            }
        }
        return found.sorted()
    }

    /// FNV-1a over the bytes, then a final mix so the low bits depend on every byte.
    private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return Int(truncatingIfNeeded: h)
    }
}

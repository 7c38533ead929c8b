import ShardCore

/// The decoding and checking of one sample's slot of a ``LocationFile`` (format 2), apart from
/// any I/O: what a reader trusts of the file is only what passes here. Pure functions over byte
/// buffers that need only ShardCore (its ``CRC32C``), so that a libFuzzer harness can call them
/// directly:
///
/// ```swift
/// let bounds = LocationSlot.Bounds(
///     slotSize: slot.count, shardSizes: [1 << 20], extensionCount: 2, overflowStart: 4096, tailStart: 8192)
/// switch try LocationSlot.decode(slot, index: 7, bounds: bounds) {
/// case .record(let record): use(record.key, (0..<record.memberCount).map(record.member))
/// case .overflow(let offset, let length):
///     let record = try LocationSlot.decodeRecord(bytesAt(offset, length), index: 7, bounds: bounds)
/// }
/// ```
///
/// Layout, little-endian. A record is a CRC-32C (UInt32), the member count (UInt32), the key's
/// length (UInt32), then per member the data offset with the extended-header flag in its low
/// bit (UInt64: data offsets are multiples of 512), the length (Int64), the shard number
/// (UInt32) and the extension number (UInt32), then the key's bytes. A slot holds its record
/// followed by zeros, or, for a record in the overflow area, the CRC, `UInt32.max`, the
/// record's offset and its length (UInt64 each), followed by zeros. A slot's CRC covers the
/// sample's index (8 bytes) then the slot from byte 4 to its end, so a slot read for another
/// sample fails too; an overflow record's CRC covers the index then the record from byte 4.
///
/// What is checked, so that every value reaching a read or an allocation is in range: the CRC;
/// the member count and key length within the slot (or exactly the overflow record); the
/// overflow pointer within the overflow area; per member, a data offset that is a multiple of
/// 512, at least 512 and below 2^48 (``PackedMember``'s limit), a length of at least 0, a shard
/// number below the shard count, `offset + length` within that shard's size recorded at ingest,
/// and an extension number below the extension count.
struct LocationSlot {
    /// The figures a slot is checked against: the index's and the file's checked header's.
    struct Bounds: Sendable {
        /// The slot size in bytes.
        var slotSize: Int
        /// Each shard's size recorded at ingest, by shard number.
        var shardSizes: [Int64]
        /// The number of extensions in the file's tail.
        var extensionCount: Int
        /// Where the overflow area starts and ends (the tail starts).
        var overflowStart: Int64
        var tailStart: Int64
    }

    /// Why a slot or record is not trusted. Never shown to users: the sample is read from the
    /// index instead.
    struct Damage: Error, Sendable, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// What a checked slot holds.
    enum Content {
        /// The record, in the slot.
        case record(LocationRecord)
        /// Where the record is in the overflow area: read those bytes and pass them to
        /// ``decodeRecord(_:index:bounds:)``.
        case overflow(offset: Int64, length: Int)
    }

    /// The largest data offset: what ``PackedMember`` holds (48 bits).
    static let maxOffset: Int64 = PackedMember.maxOffset
    static let checksumSize = 4
    static let recordHeaderSize = 12
    static let memberSize = 24
    /// An overflow pointer's size: the smallest slot.
    static let pointerSize = 24
    /// The member count that marks a slot whose record is in the overflow area.
    static let overflowMark = UInt32.max

    /// Checks the slot of the sample with global index `index` (exactly `bounds.slotSize` bytes)
    /// and says what it holds. The record returned points into `slot`.
    ///
    /// - Throws: ``Damage`` when the checksum or any value is wrong.
    /// - Complexity: O(slot size).
    static func decode(_ slot: UnsafeRawBufferPointer, index: Int, bounds: Bounds) throws(Damage) -> Content {
        guard slot.count == bounds.slotSize, slot.count >= pointerSize else {
            throw Damage(reason: "a slot of \(slot.count) bytes, not \(bounds.slotSize)")
        }
        guard checksum(slot, index: index) == u32(slot, 0) else { throw Damage(reason: "checksum mismatch") }
        guard u32(slot, 4) == overflowMark else {
            return .record(try record(slot, index: index, bounds: bounds, exact: false))
        }
        let offset = u64(slot, 8)
        let length = u64(slot, 16)
        guard bounds.overflowStart >= 0, bounds.tailStart >= bounds.overflowStart,
            offset >= UInt64(bounds.overflowStart), offset <= UInt64(bounds.tailStart),
            length >= UInt64(recordHeaderSize), length <= UInt64(bounds.tailStart) - offset
        else { throw Damage(reason: "an overflow pointer (\(offset), \(length)) outside the overflow area") }
        return .overflow(offset: Int64(offset), length: Int(length))
    }

    /// Checks the overflow record of the sample with global index `index` (exactly the bytes its
    /// slot points to). The record returned points into `bytes`.
    ///
    /// - Throws: ``Damage`` when the checksum or any value is wrong.
    /// - Complexity: O(record size).
    static func decodeRecord(_ bytes: UnsafeRawBufferPointer, index: Int, bounds: Bounds) throws(Damage)
        -> LocationRecord
    {
        guard bytes.count >= recordHeaderSize else {
            throw Damage(reason: "an overflow record of \(bytes.count) bytes")
        }
        guard checksum(bytes, index: index) == u32(bytes, 0) else { throw Damage(reason: "checksum mismatch") }
        return try record(bytes, index: index, bounds: bounds, exact: true)
    }

    /// The record at the start of `bytes` (all of them when `exact`), its values checked.
    private static func record(_ bytes: UnsafeRawBufferPointer, index: Int, bounds: Bounds, exact: Bool)
        throws(Damage) -> LocationRecord
    {
        let room = bytes.count - recordHeaderSize
        let members = u32(bytes, 4)
        let keyLength = u32(bytes, 8)
        guard room >= 0, UInt64(members) <= UInt64(room / memberSize) else {
            throw Damage(reason: "\(members) members in \(bytes.count) bytes")
        }
        let count = Int(members)
        let keyRoom = room - count * memberSize
        guard exact ? UInt64(keyLength) == UInt64(keyRoom) : UInt64(keyLength) <= UInt64(keyRoom) else {
            throw Damage(reason: "a key of \(keyLength) bytes in \(keyRoom)")
        }
        let record = LocationRecord(
            bytes: UnsafeRawBufferPointer(
                rebasing: bytes[0..<(recordHeaderSize + count * memberSize + Int(keyLength))]),
            memberCount: count)
        for i in 0..<count {
            let at = recordHeaderSize + i * memberSize
            let offsetField = u64(bytes, at)
            let length = Int64(bitPattern: u64(bytes, at + 8))
            let shard = u32(bytes, at + 16)
            let ext = u32(bytes, at + 20)
            let offset = offsetField & ~1
            guard offset >= 512, offset & 511 == 0, offset <= UInt64(maxOffset) else {
                throw Damage(reason: "member \(i): data offset \(offset)")
            }
            guard length >= 0 else { throw Damage(reason: "member \(i): length \(length)") }
            guard UInt64(shard) < UInt64(bounds.shardSizes.count) else {
                throw Damage(reason: "member \(i): shard number \(shard) of \(bounds.shardSizes.count)")
            }
            let size = bounds.shardSizes[Int(shard)]
            guard Int64(offset) <= size, length <= size - Int64(offset) else {
                throw Damage(reason: "member \(i): \(length) bytes at \(offset), past the shard's \(size) bytes")
            }
            guard UInt64(ext) < UInt64(bounds.extensionCount) else {
                throw Damage(reason: "member \(i): extension number \(ext) of \(bounds.extensionCount)")
            }
        }
        return record
    }

    /// The CRC a slot or record of sample `index` must carry in its first 4 bytes.
    static func checksum(_ bytes: UnsafeRawBufferPointer, index: Int) -> UInt32 {
        let seed = CRC32C.checksum(littleEndian: UInt64(truncatingIfNeeded: index))
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[checksumSize...]), continuing: seed)
    }

    /// The size of a record with `members` members and a key of `keyLength` bytes.
    static func recordSize(members: Int, keyLength: Int) -> Int {
        recordHeaderSize + members * memberSize + keyLength
    }

    /// Writes the record of sample `index`, its CRC included, at the start of `out`, and zeros
    /// after it: `out` is a whole slot, or exactly an overflow record
    /// (``recordSize(members:keyLength:)`` bytes, at least).
    static func encodeRecord(
        into out: UnsafeMutableRawBufferPointer, index: Int, key: UnsafeRawBufferPointer,
        members: [LocationRecord.Member]
    ) {
        precondition(out.count >= recordSize(members: members.count, keyLength: key.count), "the record does not fit")
        out.storeBytes(of: UInt32(members.count).littleEndian, toByteOffset: 4, as: UInt32.self)
        out.storeBytes(of: UInt32(key.count).littleEndian, toByteOffset: 8, as: UInt32.self)
        var at = recordHeaderSize
        for m in members {
            out.storeBytes(
                of: (UInt64(m.offset) | (m.isExtended ? 1 : 0)).littleEndian, toByteOffset: at, as: UInt64.self)
            out.storeBytes(of: UInt64(bitPattern: m.length).littleEndian, toByteOffset: at + 8, as: UInt64.self)
            out.storeBytes(of: UInt32(m.shard).littleEndian, toByteOffset: at + 16, as: UInt32.self)
            out.storeBytes(of: UInt32(m.ext).littleEndian, toByteOffset: at + 20, as: UInt32.self)
            at += memberSize
        }
        UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + key.count)]).copyMemory(from: key)
        UnsafeMutableRawBufferPointer(rebasing: out[(at + key.count)...]).initializeMemory(as: UInt8.self, repeating: 0)
        seal(out, index: index)
    }

    /// Writes the slot (all of `out`) of sample `index` pointing to its record at `offset`,
    /// `length` bytes long.
    static func encodePointer(into out: UnsafeMutableRawBufferPointer, index: Int, offset: Int64, length: Int) {
        precondition(out.count >= pointerSize, "a slot holds a pointer")
        out.storeBytes(of: overflowMark.littleEndian, toByteOffset: 4, as: UInt32.self)
        out.storeBytes(of: UInt64(offset).littleEndian, toByteOffset: 8, as: UInt64.self)
        out.storeBytes(of: UInt64(length).littleEndian, toByteOffset: 16, as: UInt64.self)
        UnsafeMutableRawBufferPointer(rebasing: out[pointerSize...]).initializeMemory(as: UInt8.self, repeating: 0)
        seal(out, index: index)
    }

    /// Writes the CRC of `out` into its first 4 bytes.
    private static func seal(_ out: UnsafeMutableRawBufferPointer, index: Int) {
        out.storeBytes(
            of: checksum(UnsafeRawBufferPointer(out), index: index).littleEndian, toByteOffset: 0, as: UInt32.self)
    }

    static func u32(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    static func u64(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
}

/// One sample's record in the location file, checked by ``LocationSlot``: a view of the bytes it
/// was decoded from, valid as long as they are.
struct LocationRecord {
    /// One member's location.
    struct Member: Equatable, Sendable {
        /// The data offset in the shard (a multiple of 512, at least 512).
        var offset: Int64
        var length: Int64
        /// The shard's number among the shards ordered by id.
        var shard: Int
        /// The extension's number in the file's extension table.
        var ext: Int
        /// Whether the member had pax or GNU long-name blocks before its own header.
        var isExtended: Bool
    }

    /// The record's bytes, exactly.
    let bytes: UnsafeRawBufferPointer
    /// The number of members.
    let memberCount: Int

    /// The key's bytes.
    var key: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(
            rebasing: bytes[(LocationSlot.recordHeaderSize + memberCount * LocationSlot.memberSize)...])
    }

    /// Member `i` (in archive order), `0 <= i < memberCount`.
    func member(_ i: Int) -> Member {
        precondition(i >= 0 && i < memberCount, "member \(i) of \(memberCount)")
        let at = LocationSlot.recordHeaderSize + i * LocationSlot.memberSize
        let field = LocationSlot.u64(bytes, at)
        return Member(
            offset: Int64(field & ~1), length: Int64(bitPattern: LocationSlot.u64(bytes, at + 8)),
            shard: Int(LocationSlot.u32(bytes, at + 16)), ext: Int(LocationSlot.u32(bytes, at + 20)),
            isExtended: field & 1 != 0)
    }
}

import ShardCore
import ShardIndex

/// One member's location in 16 bytes: the data offset and an extension number packed in one
/// word, the length, and the shard's number in the dataset's shard list.
struct PackedMember: Sendable {
    /// `offset << 16 | extension number`. The offset is the data offset in the shard (or, for the
    /// memory strategy after the preload, the offset in that shard's arena).
    var offsetAndExt: UInt64
    /// The length, or `UInt32.max` when the real length is in ``LocationTable/longLengths``.
    var length32: UInt32
    /// The shard's number (its position in the dataset's shard list) in the low 31 bits; the top
    /// bit is set when the member had pax or GNU long-name blocks before its own header (see
    /// ``isExtended``).
    var shardAndFlag: UInt32

    /// Offsets must fit in 48 bits (256 TiB) and extension numbers in 16 bits.
    static let maxOffset: Int64 = (1 << 48) - 1
    static let maxExtensions = 1 << 16
    /// Shard numbers must fit in 31 bits.
    static let maxShards = 1 << 31
    private static let extendedFlag: UInt32 = 1 << 31

    /// - Parameter extended: whether the member's first header block comes before its own header
    ///   (`headerOffset < dataOffset - 512`): its own header's name and size may then be partial.
    init(offset: Int64, ext: Int, length: Int64, shard: Int, extended: Bool = false) {
        offsetAndExt = UInt64(offset) << 16 | UInt64(ext)
        length32 = length >= Int64(UInt32.max) ? UInt32.max : UInt32(length)
        shardAndFlag = UInt32(shard) | (extended ? Self.extendedFlag : 0)
    }

    /// The shard's number in the dataset's shard list.
    var shard: UInt32 { shardAndFlag & ~Self.extendedFlag }

    /// Whether the member had pax or GNU long-name blocks before its own header, so that its own
    /// header holds only part of the name (see `MemberHeaderCheck`).
    var isExtended: Bool { shardAndFlag & Self.extendedFlag != 0 }

    var offset: Int64 {
        get { Int64(offsetAndExt >> 16) }
        set { offsetAndExt = UInt64(newValue) << 16 | (offsetAndExt & 0xffff) }
    }
    var ext: Int { Int(offsetAndExt & 0xffff) }
}

/// The selection's member locations resolved once at open into flat arrays, so that a lookup is
/// a few array reads and no SQL: about 16 bytes a member plus the keys.
///
/// Samples are stored in dataset order (global index, or split position); each sample's members
/// in archive order (by data offset), which is the order bytes are checksummed and read in.
final class LocationTable: @unchecked Sendable {
    /// Members of sample `p` are `members[memberStarts[p] ..< memberStarts[p + 1]]`.
    var members: [PackedMember] = []
    var memberStarts: [UInt32] = [0]
    /// The key of sample `p` is `keyBytes[keyStarts[p] ..< keyStarts[p + 1]]`.
    var keyBytes: [UInt8] = []
    var keyStarts: [UInt32] = [0]
    /// The global index of sample `p`, when the dataset is a split (nil: the position is the index).
    var globalIndexes: [UInt32]?
    /// Lengths of 4 GiB and more, by member number.
    var longLengths: [Int: Int64] = [:]
    /// The extension names, by number.
    var extensionNames: [String] = []
    /// Every extension the selection's samples have, selected or not.
    var allExtensionNames: [String] = []
    /// The sum of the selected members' lengths.
    var selectionBytes: Int64 = 0

    var count: Int { memberStarts.count - 1 }

    /// The bytes this table holds (array storage, not counting small constant overheads).
    var byteCount: Int64 {
        Int64(
            members.capacity * MemoryLayout<PackedMember>.stride + memberStarts.capacity * 4 + keyBytes.capacity
                + keyStarts.capacity * 4 + (globalIndexes?.capacity ?? 0) * 4 + longLengths.count * 32)
    }

    /// An estimate of the bytes a table would take, before building it.
    static func estimatedBytes(samples: Int, members: Int, isSplit: Bool) -> Int64 {
        Int64(members) * 16 + Int64(samples) * (4 + 4 + 24 + (isSplit ? 4 : 0))
    }

    func length(ofMember i: Int) -> Int64 {
        let m = members[i]
        return m.length32 == UInt32.max ? longLengths[i] ?? Int64(UInt32.max) : Int64(m.length32)
    }

    /// The position of the sample member number `m` belongs to.
    ///
    /// - Complexity: O(log samples).
    func position(ofMember m: Int) -> Int {
        // The last p with memberStarts[p] <= m (samples without members share their start).
        var low = 0
        var high = count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if Int(memberStarts[mid]) <= m { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// Why a table cannot hold a selection (it then goes through SQL).
    struct Overflow: Error {
        var reason: String
    }

    /// Resolves the selection: every sample of the dataset (`splitID` nil) or of one split, with
    /// the members whose extension is in `extensions` (all when nil).
    ///
    /// Two sequential passes: keys in dataset order, then the members table in `sample_id` order.
    /// Every selected member row is validated (``MemberLocation/defect(shardSize:)``) before it
    /// is packed.
    ///
    /// - Parameters:
    ///   - shards: the dataset's shard list (sizes recorded at ingest), by number.
    ///   - shardNumbers: shard row id → the shard's number in the dataset's shard list.
    ///   - expectedMembers: the members expected, reserved up front so the array does not grow by doubling.
    ///   - indexPath: the index's path, for errors.
    /// - Throws: `SQLiteError`; ``IndexRowError`` for a damaged member row; ``Overflow`` when a
    ///   count, an offset or the number of extensions does not fit the packed form.
    /// - Complexity: O(samples + members) rows read, plus sorting each sample's few members.
    static func build(
        reader: IndexReader, splitID: Int64?, count: Int, extensions: Set<String>?, shards: [ShardRecord],
        shardNumbers: [Int64: Int], expectedMembers: Int, indexPath: String
    ) throws -> LocationTable {
        let table = LocationTable()
        table.members.reserveCapacity(expectedMembers)
        guard count < Int(UInt32.max) else { throw Overflow(reason: "\(count) samples") }
        // Keys in dataset order, and for a split the sample id → position map.
        var positionOfSample: [Int32] = []
        table.keyStarts.reserveCapacity(count + 1)
        let keys = try reader.sampleKeys(inSplit: splitID)
        if splitID != nil {
            table.globalIndexes = []
            table.globalIndexes!.reserveCapacity(count)
        }
        while try keys.next() {
            let id = keys.sampleID
            if splitID != nil {
                guard id >= 0, id < Int64(Int32.max) else { throw Overflow(reason: "sample id \(id)") }
                if positionOfSample.count <= Int(id) {
                    positionOfSample.append(contentsOf: repeatElement(-1, count: Int(id) + 1 - positionOfSample.count))
                }
                positionOfSample[Int(id)] = Int32(table.globalIndexes!.count)
                table.globalIndexes!.append(UInt32(id))
            }
            keys.withKeyBytes { table.keyBytes.append(contentsOf: $0) }
            guard table.keyBytes.count < Int(UInt32.max) else { throw Overflow(reason: "keys of 4 GiB") }
            table.keyStarts.append(UInt32(table.keyBytes.count))
        }
        table.keyBytes = Array(table.keyBytes)  // drop the spare capacity of appending
        guard table.keyStarts.count - 1 == count else {
            throw IndexError.invalidArgument(
                "the index changed while it was being read (\(table.keyStarts.count - 1) samples, not \(count)); open it again"
            )
        }

        // Members in sample_id order (the table's primary key order: a sequential scan).
        // Extensions seen so far, as stored bytes, with their number (nil: not selected). A linear
        // scan: datasets have a handful of extensions, and this avoids an allocation per row.
        var seen: [(bytes: [UInt8], number: Int?)] = []
        let rows = try reader.membersInSampleOrder()
        // For the whole dataset, rows arrive in position order and the starts are written as they
        // come; for a split they are scattered and are bucketed by position afterwards.
        var scattered: [(position: Int32, member: PackedMember, long: Int64)] = []
        if splitID == nil { table.memberStarts.reserveCapacity(count + 1) }
        while try rows.next() {
            let sampleID = rows.sampleID
            let position: Int
            if splitID != nil {
                guard sampleID >= 0, Int(sampleID) < positionOfSample.count else { continue }
                let p = positionOfSample[Int(sampleID)]
                if p < 0 { continue }
                position = Int(p)
            } else {
                guard sampleID >= 0, sampleID < Int64(count) else { continue }
                position = Int(sampleID)
            }
            let ext: Int? = rows.withExtensionBytes { text in
                for entry in seen where entry.bytes.elementsEqual(text) { return entry.number }
                let name = String(decoding: text, as: UTF8.self)
                var number: Int?
                if extensions?.contains(name) ?? true {
                    number = table.extensionNames.count
                    table.extensionNames.append(name)
                }
                seen.append((Array(text), number))
                table.allExtensionNames.append(name)
                return number
            }
            guard let ext else { continue }
            guard ext < PackedMember.maxExtensions else { throw Overflow(reason: "more than 65536 extensions") }
            let location = rows.location
            let shard = shardNumbers[location.shardID]
            if let defect = location.defect(shardSize: shard.map { shards[$0].tarSize }) {
                let keyBytes = table.keyBytes[Int(table.keyStarts[position])..<Int(table.keyStarts[position + 1])]
                throw IndexRowError(
                    indexPath: indexPath, sample: sampleID, key: SampleKey(bytes: keyBytes),
                    ext: table.extensionNames[ext], defect: defect)
            }
            let offset = location.dataOffset
            let length = location.length
            guard offset <= PackedMember.maxOffset else { throw Overflow(reason: "offset \(offset)") }
            // Saturating: rows are validated against shard sizes read from disk, not yet the files.
            let (sum, overflow) = table.selectionBytes.addingReportingOverflow(length)
            table.selectionBytes = overflow ? Int64.max : sum
            let member = PackedMember(
                offset: offset, ext: ext, length: length, shard: shard!,
                extended: location.headerOffset < offset - Int64(MemberHeaderCheck.blockSize))
            if splitID != nil {
                scattered.append((Int32(position), member, length))
            } else {
                // Close the samples before this one (some may have no selected member).
                while table.memberStarts.count <= position { table.memberStarts.append(UInt32(table.members.count)) }
                if member.length32 == UInt32.max { table.longLengths[table.members.count] = length }
                table.members.append(member)
                guard table.members.count < Int(UInt32.max) else { throw Overflow(reason: "4 billion members") }
            }
        }
        if splitID == nil {
            while table.memberStarts.count <= count { table.memberStarts.append(UInt32(table.members.count)) }
        } else {
            guard scattered.count < Int(UInt32.max) else { throw Overflow(reason: "4 billion members") }
            var starts = [Int](repeating: 0, count: count + 1)
            for s in scattered { starts[Int(s.position) + 1] += 1 }
            for p in 0..<count { starts[p + 1] += starts[p] }
            table.memberStarts = starts.map { UInt32($0) }
            var next = Array(starts.dropLast())
            table.members = [PackedMember](
                repeating: PackedMember(offset: 0, ext: 0, length: 0, shard: 0), count: scattered.count)
            for s in scattered {
                let slot = next[Int(s.position)]
                next[Int(s.position)] += 1
                table.members[slot] = s.member
                if s.member.length32 == UInt32.max { table.longLengths[slot] = s.long }
            }
        }
        table.sortMembersByOffset()
        return table
    }

    /// Puts each sample's members in archive order (by data offset); they arrive sorted by
    /// extension. Long lengths move with their members.
    private func sortMembersByOffset() {
        for p in 0..<count {
            let start = Int(memberStarts[p])
            let end = Int(memberStarts[p + 1])
            guard end - start > 1 else { continue }
            var sorted = true
            for i in (start + 1)..<end where Self.archiveOrder(members[i], members[i - 1]) {
                sorted = false
                break
            }
            if sorted { continue }
            var slice = (start..<end).map { (members[$0], longLengths[$0]) }
            slice.sort { Self.archiveOrder($0.0, $1.0) }
            for (i, entry) in zip(start..<end, slice) {
                members[i] = entry.0
                longLengths[i] = entry.1
            }
        }
    }

    /// Whether `a` comes before `b` in the shards: by shard (ingest order), then offset.
    static func archiveOrder(_ a: PackedMember, _ b: PackedMember) -> Bool {
        a.shard != b.shard ? a.shard < b.shard : a.offset < b.offset
    }

    /// The positions ordered by where each sample's first member is: shard by shard (ingest
    /// order), front to back. Samples without members come last, in position order.
    ///
    /// - Complexity: O(n log n), or O(n) when the positions are already in that order.
    func storageOrder() -> [UInt32] {
        var keyed: [(UInt64, UInt32)] = []
        keyed.reserveCapacity(count)
        var sorted = true
        var last: UInt64 = 0
        for p in 0..<count {
            let start = Int(memberStarts[p])
            let key: UInt64
            if start == Int(memberStarts[p + 1]) {
                key = UInt64.max
            } else {
                let m = members[start]
                key = UInt64(m.shard) << 48 | UInt64(m.offset)
            }
            if key < last { sorted = false }
            last = key
            keyed.append((key, UInt32(p)))
        }
        if !sorted { keyed.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 } }
        return keyed.map(\.1)
    }
}

// fuzz-modules: ShardCore ShardIO ShardIndex ShardCompression ShardRemote ShardLoader
//
// The location file's slot decoder (`LocationSlot`), which decides what of a damaged or hostile
// location file a read may trust. The input is read as: one flags byte, the sample's index (2
// bytes), the shard count (1 byte, 1 to 8), each shard's size (4 bytes each, little-endian), the
// extension count (1 byte), then the slot's bytes (the rest; at least 24). Flags: bit 0 writes the
// slot's correct CRC over what follows it, so the fuzzer gets past the checksum; bit 1 decodes the
// rest as an overflow record instead of a slot. A `Damage` error is the expected answer for most
// inputs; a crash, a trap, an ASan report, or a decoded value a read could not use (the invariants
// below) is a bug.
@testable import ShardLoader

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard size >= 4 else { return 0 }
    let flags = input[0]
    let index = Int(input[1]) | Int(input[2]) << 8
    let shardCount = Int(input[3] % 8) + 1
    var at = 4
    guard size >= at + 4 * shardCount + 1 else { return 0 }
    var shardSizes: [Int64] = []
    for _ in 0..<shardCount {
        var v: Int64 = 0
        for i in 0..<4 { v |= Int64(input[at + i]) << (8 * i) }
        shardSizes.append(v << 9)  // multiples of 512 up to 2 TiB
        at += 4
    }
    let extensionCount = Int(input[at])
    at += 1
    var slot = Array(input[at...])
    guard slot.count >= LocationSlot.pointerSize else { return 0 }
    if flags & 1 != 0 {
        let crc = slot.withUnsafeBytes { LocationSlot.checksum($0, index: index) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { slot[i] = $0[i] } }
    }
    let overflowStart: Int64 = 4096
    let tailStart: Int64 = 1 << 20
    let bounds = LocationSlot.Bounds(
        slotSize: slot.count, shardSizes: shardSizes, extensionCount: extensionCount, overflowStart: overflowStart,
        tailStart: tailStart)
    slot.withUnsafeBytes { bytes in
        do throws(LocationSlot.Damage) {
            if flags & 2 != 0 {
                check(try LocationSlot.decodeRecord(bytes, index: index, bounds: bounds), bytes, bounds)
                return
            }
            switch try LocationSlot.decode(bytes, index: index, bounds: bounds) {
            case .record(let record): check(record, bytes, bounds)
            case .overflow(let offset, let length):
                require(
                    offset >= overflowStart && length >= 0 && offset + Int64(length) <= tailStart,
                    "overflow pointer \(offset)+\(length) outside \(overflowStart)..<\(tailStart)")
            }
        } catch {
            require(!error.reason.isEmpty && !error.reason.contains("\n"), "reason not one line: \(error.reason)")
        }
    }
    return 0
}

/// Every value a read would use is in range: what `LocationSlot` promises.
private func check(_ record: LocationRecord, _ bytes: UnsafeRawBufferPointer, _ bounds: LocationSlot.Bounds) {
    require(record.memberCount >= 0, "negative member count")
    let keyStart = LocationSlot.recordHeaderSize + record.memberCount * LocationSlot.memberSize
    require(keyStart + record.key.count <= bytes.count, "record longer than its bytes")
    for i in 0..<record.memberCount {
        let m = record.member(i)
        require(m.offset >= 512 && m.offset % 512 == 0 && m.offset <= PackedMember.maxOffset, "offset \(m.offset)")
        require(m.length >= 0, "length \(m.length)")
        require(m.shard >= 0 && m.shard < bounds.shardSizes.count, "shard \(m.shard)")
        require(m.offset + m.length <= bounds.shardSizes[m.shard], "member past its shard's end")
        require(m.ext >= 0 && m.ext < bounds.extensionCount, "extension \(m.ext)")
    }
}

private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

// fuzz-modules: ShardCore ShardIO ShardIndex
//
// The validation of index rows as they are loaded (`MemberLocation.defect(shardSize:)`), which
// stands between a damaged or hostile index and every read, allocation and integer conversion.
// The input is read as five little-endian Int64 (shard id, header offset, data offset, length, the
// shard's size recorded at ingest) and a flags byte (bit 0: the shard is unknown). A defect is the
// expected answer to most inputs; a crash, a trap (an overflow), a defect message on more than one
// line, or a row accepted that a read could not use (the invariants below) is a bug.
@testable import ShardCore
@testable import ShardIndex

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 41 else { return 0 }
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    func int64(_ i: Int) -> Int64 { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
    let location = MemberLocation(shardID: int64(0), headerOffset: int64(1), dataOffset: int64(2), length: int64(3))
    let shardSize: Int64? = raw[40] & 1 != 0 ? nil : int64(4)
    guard let defect = location.defect(shardSize: shardSize) else {
        require(shardSize != nil, "a row of an unknown shard accepted")
        let l = location
        require(l.dataOffset >= 512 && l.dataOffset % 512 == 0, "data offset \(l.dataOffset) accepted")
        require(l.headerOffset >= 0 && l.headerOffset % 512 == 0, "header offset \(l.headerOffset) accepted")
        require(l.headerOffset <= l.dataOffset - 512, "header after data accepted")
        require(l.length >= 0, "length \(l.length) accepted")
        let (end, overflow) = l.dataOffset.addingReportingOverflow(l.length)
        require(!overflow && end <= shardSize!, "a member past its shard's end accepted")
        // What a read then does with it may not trap: Int conversions and the header's offset.
        _ = Int(l.length)
        _ = l.dataOffset - 512
        return 0
    }
    let error = IndexRowError(
        indexPath: "i\ndex.sqlite", sample: location.shardID, key: SampleKey(bytes: raw[0..<8]), ext: "j\u{1B}pg",
        defect: defect)
    require(!defect.description.contains("\n"), "defect not one line: \(defect)")
    require(!error.description.contains("\n") && !error.description.contains("\u{1B}"), "error not one line: \(error)")
    return 0
}

private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

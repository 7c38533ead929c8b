// fuzz-modules: ShardCore
//
// `MemberHeaderCheck` on arbitrary header blocks against arbitrary index values. The input is
// read as: one flags byte, the indexed length (8 bytes, little-endian), the key's and the
// extension's lengths (one byte each), the key, the extension, then the block (at least 512 bytes;
// a shorter rest is padded with zeros). Flags: bit 0 `extended`; bit 1 write a valid checksum into
// the block, so the fuzzer gets past it; bit 2 take the length from the block's size field; bit 3
// take the key and extension from the block's own name under the webdataset rule. A mismatch is
// the expected answer; a crash, a trap, an ASan report or a broken invariant below is a bug. The
// invariants: descriptions are one line; with bits 1 to 3 set and `extended` clear, a regular
// file's header is accepted.
@testable import ShardCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard size >= 11 else { return 0 }
    let flags = input[0]
    var length = Int64(0)
    for i in 0..<8 { length |= Int64(input[1 + i]) << (8 * i) }
    let keyCount = Int(input[9])
    let extCount = Int(input[10])
    guard size >= 11 + keyCount + extCount else { return 0 }
    var key = Array(input[11..<11 + keyCount])
    var ext = Array(input[(11 + keyCount)..<(11 + keyCount + extCount)])
    var block = Array(input[(11 + keyCount + extCount)...])
    if block.count < 512 { block += [UInt8](repeating: 0, count: 512 - block.count) }

    let extended = flags & 1 != 0
    if flags & 2 != 0 { writeChecksum(&block) }
    let sizeField = block.withUnsafeBytes { TarHeader.number(in: $0, TarHeader.Field.size) }
    if flags & 4 != 0, case .value(let v) = sizeField { length = v }
    let name = block.withUnsafeBytes { TarHeader.name(in: $0, format: TarHeader.format(of: $0)) }
    var named = false
    if flags & 8 != 0, case .member(let k, let e) = WebDatasetName.classify(name) {
        (key, ext, named) = (k, e, true)
    }

    let mismatch = block.withUnsafeBytes { block in
        key.withUnsafeBytes { key in
            ext.withUnsafeBytes { ext in
                MemberHeaderCheck.check(block, length: length, key: key, ext: ext, extended: extended)
            }
        }
    }
    guard let mismatch else { return 0 }
    require(!mismatch.description.isEmpty && isOneLine(mismatch.description), "not one line: \(mismatch)")
    let typeflag = block[TarHeader.Field.typeflag]
    let regular = typeflag == 0 || typeflag == UInt8(ascii: "0") || typeflag == UInt8(ascii: "7")
    let zero = block.allSatisfy { $0 == 0 }
    if flags & 6 == 6, named, !extended, regular, !zero, case .value = sizeField {
        fatalError("a consistent header is refused: \(mismatch)")
    }
    return 0
}

/// Writes the POSIX checksum of `block` into its checksum field: six octal digits, NUL, space.
private func writeChecksum(_ block: inout [UInt8]) {
    for i in TarHeader.Field.checksum { block[i] = 0x20 }
    var sum = 0
    for i in 0..<512 { sum += Int(block[i]) }
    var digits = Array(String(sum, radix: 8).utf8)
    digits = [UInt8](repeating: UInt8(ascii: "0"), count: max(0, 6 - digits.count)) + digits
    for (i, d) in digits.suffix(6).enumerated() { block[148 + i] = d }
    block[154] = 0
    block[155] = 0x20
}

/// Whether `text` shows as one line: no control characters, no line or paragraph separators.
private func isOneLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }
}

private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

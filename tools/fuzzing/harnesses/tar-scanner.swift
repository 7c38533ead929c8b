// fuzz-modules: ShardCore
//
// The tar scanner on arbitrary bytes, read as a shard (an in-memory `RandomAccessBytes`): every
// entry is scanned and every name goes through the webdataset key rule. A thrown `TarError` is the
// expected answer to bad input; a crash, a trap, an ASan report or a broken invariant below is a
// bug. The invariants: entries are block-aligned, in order and inside the file; a finished scan
// stays finished and a failed one fails again with the same error; an error's offset is inside the
// file (or on the block boundary just past its end, where a missing header was due); and a plain
// regular member (no pax or GNU long-name header anywhere before it) passes `MemberHeaderCheck`
// against what the scanner reported, as every read will check it.
@testable import ShardCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    let fileSize = Int64(size)
    var scanner = TarScanner(InMemoryBytes(bytes))
    var nextFree: Int64 = 0
    do {
        while let entry = try scanner.next() {
            require(entry.headerOffset % 512 == 0 && entry.dataOffset % 512 == 0, "unaligned entry \(entry)")
            require(entry.headerOffset >= nextFree, "entry \(entry) overlaps the one before (free from \(nextFree))")
            require(entry.dataOffset >= entry.headerOffset + 512, "data before its header: \(entry)")
            require(entry.size >= 0 && entry.dataOffset + entry.size <= fileSize, "entry past the end: \(entry)")
            nextFree = entry.dataOffset + entry.size
            let name = WebDatasetName.classify(entry.name)
            if entry.kind == .regular, case .member(let key, let ext) = name {
                checkOwnHeader(bytes, entry, key: key, ext: ext, plain: scanner.statistics.extendedHeaderBytes == 0)
            }
        }
        require(try scanner.next() == nil, "a finished scan returned another entry")
        require(scanner.offset <= fileSize, "end offset \(scanner.offset) past the file (\(fileSize))")
    } catch {
        // At most the block after the last one the file starts (where a missing header was due).
        require((0...(fileSize + 511) / 512 * 512).contains(error.offset), "error offset past the file: \(error)")
        require(!error.description.isEmpty && isOneLine(error.description), "not one line: \(error)")
        do {
            _ = try scanner.next()
            fatalError("a failed scan returned instead of throwing \(error) again")
        } catch let again {
            require(again == error, "a failed scan threw \(again), then \(error)")
        }
    }
    return 0
}

/// Runs `MemberHeaderCheck` on the block before the entry's data, as a read does; for a plain
/// member (`plain`: no extended header anywhere so far) the check must pass.
private func checkOwnHeader(_ bytes: [UInt8], _ entry: TarEntry, key: [UInt8], ext: [UInt8], plain: Bool) {
    let extended = entry.headerOffset < entry.dataOffset - 512
    let start = Int(entry.dataOffset) - 512
    let mismatch = bytes.withUnsafeBytes { all in
        key.withUnsafeBytes { key in
            ext.withUnsafeBytes { ext in
                MemberHeaderCheck.check(
                    UnsafeRawBufferPointer(rebasing: all[start..<start + 512]), length: entry.size, key: key,
                    ext: ext, extended: extended)
            }
        }
    }
    if let mismatch {
        require(isOneLine(mismatch.description), "not one line: \(mismatch)")
        require(!plain || extended, "a member the scanner read is refused by the header check: \(mismatch), \(entry)")
    }
}

/// Whether `text` shows as one line: no control characters, no line or paragraph separators.
private func isOneLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }
}

private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

// fuzz-modules: ShardCore
//
// The NPY parser on arbitrary bytes, read as one member: the header is parsed and, when it is
// accepted, the elements are decoded (byte-swapped, Fortran order transposed) into a buffer of
// exactly `dataByteCount` bytes, which ASan guards. A thrown `NPYError` is the expected answer to
// bad input; a crash, a trap, an ASan report or a broken invariant below is a bug. The invariants:
// an accepted header accounts for every byte of the member; the header cache agrees with the
// parser; a dtype string that parses gives back a `descr` that parses to the same dtype; errors
// are one line.
import ShardCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let member = UnsafeRawBufferPointer(start: data, count: size)
    checkDType(String(decoding: member.prefix(8), as: UTF8.self))
    let header: NPYHeader
    do {
        header = try NPYHeader(parsing: member)
    } catch {
        require(isOneLine(error.description), "not one line: \(error)")
        return 0
    }
    require(header.dataOffset >= 10 && header.dataOffset + header.dataByteCount == size, "bytes unaccounted: \(header)")
    require(header.shape.allSatisfy { $0 >= 0 }, "negative dimension: \(header)")
    var cache = NPYHeaderCache()
    require((try? cache.parse(member)) == header && (try? cache.parse(member)) == header, "the cache disagrees")
    checkDType(header.dtype.descr)
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: header.dataByteCount, alignment: 8)
    defer { out.deallocate() }
    if let base = out.baseAddress { header.copyElements(of: member, to: base) }
    return 0
}

private func checkDType(_ descr: String) {
    guard let dtype = try? NPYDType(descr: descr) else { return }
    require([1, 2, 4, 8].contains(dtype.size), "element size \(dtype.size) from '\(descr)'")
    require((try? NPYDType(descr: dtype.descr)) == dtype, "'\(descr)' -> \(dtype.descr) does not parse back")
}

/// Whether `text` shows as one line: no control characters, no line or paragraph separators.
private func isOneLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }
}

private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

import ShardCore
import ShardTestSupport

/// Scans every entry of `bytes`.
func scanAll(_ bytes: [UInt8]) throws(TarError) -> [TarEntry] {
    try scanAll(InMemoryBytes(bytes))
}

/// Scans every entry of `source`.
func scanAll<Source: RandomAccessBytes>(_ source: Source) throws(TarError) -> [TarEntry] {
    var scanner = TarScanner(source)
    var entries: [TarEntry] = []
    while let entry = try scanner.next() { entries.append(entry) }
    return entries
}

/// The error scanning `bytes` ends with, or nil when it scans cleanly.
func scanError(_ bytes: [UInt8]) -> TarError? {
    do {
        _ = try scanAll(bytes)
        return nil
    } catch {
        return error
    }
}

/// The bytes of `entry`'s data in `archive`.
func data(of entry: TarEntry, in archive: [UInt8]) -> [UInt8] {
    Array(archive[Int(entry.dataOffset)..<Int(entry.dataOffset + entry.size)])
}

/// Deterministic bytes for file contents.
func pattern(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}

extension Array where Element == UInt8 {
    /// The UTF-8 bytes of `text`.
    init(utf8 text: String) { self = Array(text.utf8) }
}

/// A source that claims a huge size and serves a few blocks placed at given offsets, zeros
/// elsewhere, so offsets beyond 8 GiB can be tested without memory.
struct SparseBytes: RandomAccessBytes {
    var byteCount: Int64
    /// Blocks by offset.
    var blocks: [Int64: [UInt8]]

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        let count = Int(Swift.max(0, Swift.min(Int64(buffer.count), byteCount - offset)))
        for index in 0..<count { buffer[index] = 0 }
        for (start, block) in blocks {
            let lower = Swift.max(start, offset)
            let upper = Swift.min(start + Int64(block.count), offset + Int64(count))
            guard lower < upper else { continue }
            for position in lower..<upper {
                buffer[Int(position - offset)] = block[Int(position - start)]
            }
        }
        return count
    }
}

/// A source whose reads fail from a given offset on.
struct FailingBytes: RandomAccessBytes {
    struct Failure: Error, CustomStringConvertible {
        var description: String { "simulated EIO" }
    }
    var bytes: [UInt8]
    var failFrom: Int64
    var byteCount: Int64 { Int64(bytes.count) }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        if offset + Int64(buffer.count) > failFrom { throw Failure() }
        return try InMemoryBytes(bytes).read(into: buffer, at: offset)
    }
}

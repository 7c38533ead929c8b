// The compressed-shard benchmark's program (built by tools/bench-compression): for each file, a
// DecompressingReader pass (as ingest makes it), the seek table's size, 2000 random 64 KiB reads
// and a front-to-back pass of 1 MiB reads through a SeekableReader.
import ShardCompression
import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func format(_ x: Double, _ digits: Int = 2) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (x * p).rounded() / p
    return "\(r)"
}

for path in CommandLine.arguments.dropFirst() {
    let file = try ReadOnlyFile(path: path)
    let prefix = try file.read(count: min(6, Int(file.byteCount)), at: 0)
    let kind = prefix.withUnsafeBytes { CompressionFormat.detect($0) }
    var start = now()
    let reader = try DecompressingReader(file: file, format: kind)
    let info = try reader.finish()
    let passSeconds = now() - start
    let table = info.seekTable.serialized()
    print(
        "\(path): \(kind.name), \(info.compressedSize) -> \(info.uncompressedSize) bytes; pass \(format(passSeconds, 3)) s "
            + "(\(format(Double(info.uncompressedSize) / passSeconds / 1e6, 1)) MB/s uncompressed); seek table "
            + "\(info.seekTable.pointCount) points, \(table.count) bytes = "
            + "\(format(100 * Double(table.count) / Double(info.compressedSize), 3))% of the compressed file")
    guard info.seekTable.isSeekable else { continue }
    let seekable = SeekableReader(file: file, info: info)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var state: UInt64 = 1
    start = now()
    let reads = 2000
    for _ in 0..<reads {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let offset = Int64((state >> 11) % UInt64(info.uncompressedSize))
        _ = try buffer.withUnsafeMutableBytes {
            try seekable.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<65536]), at: offset)
        }
    }
    let randomSeconds = now() - start
    start = now()
    var offset: Int64 = 0
    while offset < info.uncompressedSize {
        offset += Int64(try buffer.withUnsafeMutableBytes { try seekable.read(into: $0, at: offset) })
    }
    let sequentialSeconds = now() - start
    print(
        "  random 64 KiB reads: \(format(Double(reads) / randomSeconds, 0))/s "
            + "(\(format(randomSeconds / Double(reads) * 1000, 2)) ms each); front-to-back 1 MiB reads "
            + "\(format(sequentialSeconds, 3)) s")
}

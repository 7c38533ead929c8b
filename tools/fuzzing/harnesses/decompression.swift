// fuzz-modules: ShardCore ShardIO ShardCompression
// fuzz-flags: -lz -lzstd -llzma -lbz2
//
// ShardCompression on arbitrary bytes. The first byte chooses what is fuzzed:
//   0x00–0x7f  the rest is a compressed shard in format 1 + byte % 4 (gzip, zstd, xz, bzip2),
//              written to a temporary file and read through a DecompressingReader (at most 32 MiB
//              of output, so a small bomb stays small); when the pass succeeds, its seek table goes
//              through its stored form unchanged and, when it is seekable, SeekableReader reads
//              give the pass's bytes.
//   0x80–0xff  the rest is a stored seek table for format byte % 5, with the sizes in its own
//              header (so the fuzzer can find agreeing ones); when it is accepted it stores back
//              to the same bytes.
// A thrown DecompressionError is the expected answer to bad input; a crash, a trap, an ASan
// report, an error on more than one line or a broken invariant is a bug.
import ShardCompression
import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

private let path = "/tmp/shardstore-fuzz-decompression-\(getpid())"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if data[0] & 0x80 != 0 {
        fuzzTable(input, format: CompressionFormat(rawValue: data[0] % 5)!)
    } else {
        fuzzShard(input, format: CompressionFormat(rawValue: 1 + data[0] % 4)!)
    }
    return 0
}

private func fuzzTable(_ bytes: UnsafeRawBufferPointer, format: CompressionFormat) {
    guard bytes.count >= 24 else { return }
    let compressed = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self))
    let uncompressed = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: Int64.self))
    do {
        let table = try SeekTable(
            decoding: bytes, format: format, compressedSize: compressed, uncompressedSize: uncompressed, path: "s")
        require(table.serialized().elementsEqual(bytes), "an accepted table does not store back to its bytes")
    } catch {
        require(isOneLine(error.description), "not one line: \(error)")
    }
}

private func fuzzShard(_ bytes: UnsafeRawBufferPointer, format: CompressionFormat) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    require(fd >= 0, "cannot create \(path)")
    require(bytes.isEmpty || write(fd, bytes.baseAddress, bytes.count) == bytes.count, "cannot write \(path)")
    close(fd)
    do {
        let file = try ReadOnlyFile(path: path)
        let reader = try DecompressingReader(file: file, format: format, seekSpan: 64 << 10, bufferSize: 256 << 10)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 100_000)
        while output.count < 32 << 20 {
            let offset = Int64(output.count)
            let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: offset) }
            if n == 0 { break }
            output += buffer[0..<n]
        }
        guard output.count < 32 << 20 else { return }
        let info = try reader.finish()
        require(info.uncompressedSize == Int64(output.count), "sizes disagree")
        let stored = info.seekTable.serialized()
        let decoded = try stored.withUnsafeBytes {
            try SeekTable(
                decoding: $0, format: format, compressedSize: info.compressedSize,
                uncompressedSize: info.uncompressedSize, path: path)
        }
        require(decoded == info.seekTable, "the seek table does not survive its stored form")
        guard info.seekTable.isSeekable else { return }
        let seekable = SeekableReader(file: file, info: info)
        var state = UInt64(output.count)
        for _ in 0..<8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let offset = Int((state >> 33) % UInt64(output.count + 1))
            let count = Int((state >> 13) % 70_000)
            var got = [UInt8](repeating: 0, count: count)
            let n = try got.withUnsafeMutableBytes { try seekable.read(into: $0, at: Int64(offset)) }
            require(
                got[0..<n].elementsEqual(output[offset..<min(output.count, offset + count)]), "wrong bytes at \(offset)"
            )
        }
    } catch let error as DecompressionError {
        require(isOneLine(error.description), "not one line: \(error)")
    } catch {
        require(false, "unexpected error \(error)")
    }
}

/// Whether `text` shows as one line: no control characters, no line or paragraph separators.
private func isOneLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }
}

private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

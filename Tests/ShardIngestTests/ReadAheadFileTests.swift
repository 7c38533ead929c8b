import Foundation
import ShardStore
import ShardTestSupport
import Testing

@Suite("ReadAheadFile: the ingest scan's read-ahead window")
struct ReadAheadFileTests {
    @Test("reads through the window equal the file's bytes, in scan order and at random, up to and past the end")
    func bytesMatch() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/s.bin"
        let bytes = pattern(5 * ReadAheadFile.windowSize + 321, seed: 9)
        try writeBytes(bytes, to: path)
        let file = ReadAheadFile(try ReadOnlyFile(path: path))
        #expect(file.byteCount == Int64(bytes.count))
        var generator = SplitMix64(seed: 3)
        // Forward like a scan (headers a few blocks apart), then backwards, then at random.
        var offsets = Array(stride(from: 0, to: bytes.count + 600, by: 512 + 37))
        offsets += offsets.reversed()
        for _ in 0..<500 { offsets.append(Int(generator.next() % UInt64(bytes.count + 100))) }
        let counts = [0, 1, 512, 1000, ReadAheadFile.windowSize, ReadAheadFile.windowSize + 1, 3 * 4096]
        for (i, offset) in offsets.enumerated() {
            let count = counts[i % counts.count]
            var out = [UInt8](repeating: 0xEE, count: count)
            let n = try out.withUnsafeMutableBytes { try file.read(into: $0, at: Int64(offset)) }
            let expected = offset >= bytes.count ? [] : Array(bytes[offset..<min(offset + count, bytes.count)])
            #expect(n == expected.count, "\(count) bytes at \(offset)")
            #expect(Array(out[..<n]) == expected, "\(count) bytes at \(offset)")
        }
    }
}

import Foundation
import ShardStore
import ShardTestSupport
import Testing

@Suite("SequentialReader with the header window: the ingest scan's and verify's reads")
struct SequentialReaderWindowTests {
    @Test("reads through the window equal the file's bytes, in scan order and at random, up to and past the end")
    func bytesMatch() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/s.bin"
        let bytes = pattern(5 * SequentialReader.headerWindowSize + 321, seed: 9)
        try writeBytes(bytes, to: path)
        let file = SequentialReader(file: try ReadOnlyFile(path: path), bufferSize: SequentialReader.headerWindowSize)
        #expect(file.byteCount == Int64(bytes.count))
        var generator = SplitMix64(seed: 3)
        // Forward like a scan (headers a few blocks apart), then backwards, then at random.
        var offsets = Array(stride(from: 0, to: bytes.count + 600, by: 512 + 37))
        offsets += offsets.reversed()
        for _ in 0..<500 { offsets.append(Int(generator.next() % UInt64(bytes.count + 100))) }
        let counts = [
            0, 1, 512, 1000, SequentialReader.headerWindowSize, SequentialReader.headerWindowSize + 1, 3 * 4096,
        ]
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

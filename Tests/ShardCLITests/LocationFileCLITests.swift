import Foundation
import ShardTestSupport
import Testing

@Suite("shardstore with a damaged location file")
struct LocationFileCLITests {
    /// Writes `good` as the workspace's location file with one bit flipped in every slot, or in
    /// the header.
    static func damage(_ w: Workspace, _ good: [UInt8], header: Bool) throws {
        var bytes = good
        if header {
            bytes[60] ^= 0x04  // the member count, which only the header's checksum guards
        } else {
            let slotSize = Int(bytes[80]) | Int(bytes[81]) << 8
            for slot in stride(from: 128, to: 128 + w.allSamples.count * slotSize, by: slotSize) {
                bytes[slot + 12 + slot % 7] ^= 0x20  // in the first member's data offset or length
            }
        }
        try w.write("index.sqlite-locations", bytes)
    }

    @Test("cat and get print the exact bytes and exit 0, without a word on stderr")
    func catAndGet() throws {
        let w = try Workspace()
        try w.ingestAll()
        let all = w.allSamples.flatMap { $0.members.flatMap(\.data) }
        let good = try #require(try w.bytes("index.sqlite-locations"))
        for header in [false, true] {
            try Self.damage(w, good, header: header)
            let r = try expectRun(
                ["cat", "index.sqlite", "--strategy", "pread", "--lookup", "file"], in: w.path, stderr: "")
            #expect(r.stdout == all, "header: \(header)")
            // The damaged file was replaced (header) or removed (slots), to be written again.
            #expect(try w.bytes("index.sqlite-locations") == (header ? good : nil))

            try Self.damage(w, good, header: header)
            for sample in w.allSamples {
                for m in sample.members {
                    let got = try expectRun(
                        ["get", "index.sqlite", sample.key, "--ext", m.ext], in: w.path, stderr: "")
                    #expect(got.stdout == m.data, "\(sample.key).\(m.ext)")
                }
            }
            try Self.damage(w, good, header: header)
            let json = try expectRun(
                ["cat", "index.sqlite", "--strategy", "mmap", "--lookup", "file", "--ext", "json"], in: w.path,
                stderr: "")
            #expect(json.stdout == w.allSamples.flatMap { $0.members[1].data })
        }
    }
}

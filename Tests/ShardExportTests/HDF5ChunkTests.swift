import Foundation
import ShardStore
import ShardTestSupport
import Testing

@testable import ShardExport

/// With gzip, array chunks are shuffled and deflated by ShardStore on every core and written
/// with `H5Dwrite_chunk`; h5py (through libhdf5's own filters) must read back exactly the arrays.
@Suite("HDF5 export: chunks filtered in parallel read back with h5py")
struct HDF5ChunkTests {
    static let script = #"""
        import json, sys
        import h5py, numpy as np
        out, src, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        with h5py.File(out, "r") as f:
            keys = list(f["keys"].asstr()[:])
            for ext, chunks in spec["chunks"].items():
                d = f[ext]
                assert d.compression == "gzip" and d.compression_opts == spec["level"], (ext, d.compression)
                assert d.shuffle, ext
                assert list(d.chunks) == chunks, (ext, d.chunks)
                present = f[ext + "_present"][:] if ext + "_present" in f else None
                for r, key in enumerate(keys):
                    try:
                        want = np.load(f"{src}/{key}.{ext}")
                    except FileNotFoundError:
                        assert present is not None and not present[r], (ext, key)
                        assert not d[r].any(), (ext, key)
                        continue
                    got = d[r]
                    assert got.dtype == want.dtype.newbyteorder("<"), (ext, got.dtype, want.dtype)
                    assert np.array_equal(got, want), (ext, key)
        print("ok", len(keys))
        """#

    @Test("many chunks over several blocks, an edge chunk, 1-, 2- and 8-byte elements, a missing member")
    func parallelChunks() throws {
        guard let python = pythonWithH5py() else { return }
        let directory = try TemporaryDirectory()
        let src = directory.path + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        var files: [String: [UInt8]] = [:]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func bytes(_ n: Int, runs: Bool) -> [UInt8] {
            (0..<n).map { i in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return runs && i % 7 != 0 ? UInt8(i / 64 & 0xFF) : UInt8(truncatingIfNeeded: state >> 33)
            }
        }
        for n in 0..<70 {
            let key = String(format: "k%03d", n)
            // 256 KiB a row: a chunk a row, blocks of 32 rows, so 70 chunks in 3 blocks.
            files["\(key).big.npy"] = npy(
                "<f4", shape: [256, 256], data: bytes(256 * 256 * 4, runs: true).map { $0 & 0x3F })
            // 8,000 bytes a row: chunks of 8 rows (64 KiB), the last one an edge chunk of 6 rows.
            files["\(key).wide.npy"] = npy("<f8", shape: [1000], data: bytes(8000, runs: true).map { $0 & 0x3F })
            if n != 33 { files["\(key).small.npy"] = npy("<i2", shape: [3], data: bytes(6, runs: false)) }
            files["\(key).flag.npy"] = npy("|u1", shape: [5], data: bytes(5, runs: false))
        }
        for (name, data) in files { try Data(data).write(to: URL(fileURLWithPath: src + "/" + name)) }
        try writeShards(files, shards: 2, in: directory.path)
        let index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [directory.path + "/shard-0.tar", directory.path + "/shard-1.tar"])
        let out = directory.path + "/out.h5"
        let report = try HDF5Export.run(ExportRequest(index: index, out: out), compression: .gzip(level: 5))
        #expect(report.samples == 70)
        let spec: [String: Any] = [
            "level": 5,
            "chunks": [
                "big.npy": [1, 256, 256], "wide.npy": [8, 1000], "small.npy": [70, 3], "flag.npy": [70, 5],
            ],
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let result = try runProcess(python, ["-c", Self.script, out, src, json])
        #expect(result.status == 0, "\(result.stdoutText)\(result.stderrText)")
        #expect(result.stdoutText == "ok 70\n")
    }

    @Test("the shuffle filter's byte order: byte j of every element together")
    func shuffleOrder() throws {
        // Two 4-byte elements, and a chunk of three elements (one padded): compare with a deflate
        // of the hand-shuffled bytes.
        let source: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let filtered = source.withUnsafeBytes { ChunkFilter.filter($0, chunkBytes: 12, elementSize: 4, level: 1) }
        let expected: [UInt8] = [1, 5, 0, 2, 6, 0, 3, 7, 0, 4, 8, 0]
        #expect(filtered == expected.withUnsafeBytes { Zlib.compress($0, level: 1) })
    }
}

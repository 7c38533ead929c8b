import CShardHDF5
import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

@testable import ShardExport

/// The HDF5 export read back through libhdf5 itself, and its failures: a bad member, names that
/// collide, an existing output, a cancelled export. None of them leaves a file behind.
@Suite("HDF5 export: libhdf5 read-back and failures")
struct HDF5ExportTests {
    /// Four samples: `.npy` float32 (2, 3) arrays (little- and big-endian, one Fortran order),
    /// `.cls` labels, and a `.npy` that k2 lacks.
    struct Fixture {
        let directory: TemporaryDirectory
        var index: String { directory.path + "/index.sqlite" }
        var out: String { directory.path + "/out.h5" }
        let arrays: [[Float]]
        let located: [String: (shard: String, offset: Int64)]

        init(extra: [String: [UInt8]] = [:]) throws {
            directory = try TemporaryDirectory()
            var files: [String: [UInt8]] = [:]
            var arrays: [[Float]] = []
            for i in 0..<4 {
                let values = (0..<6).map { Float(i * 10 + $0) + 0.5 }
                arrays.append(values)
                if i == 2 { continue }
                // k3 is stored in Fortran order: element (r, c) at c * 2 + r.
                let stored = i == 3 ? [0, 3, 1, 4, 2, 5].map { values[$0] } : values
                files["k\(i).npy"] = npy(
                    i == 1 ? ">f4" : "<f4", shape: [2, 3], fortran: i == 3,
                    data: float32Bytes(stored, bigEndian: i == 1))
                files["k\(i).cls"] = Array("\(i * 7)".utf8)
            }
            files["k2.cls"] = Array("14".utf8)
            for (name, bytes) in extra { files[name] = bytes }
            self.arrays = arrays
            located = try writeShards(files, shards: 2, in: directory.path)
            _ = try Ingest.run(index: directory.path + "/index.sqlite", shards: [directory.path + "/shard-*.tar"])
        }
    }

    /// Reads dataset `name` of the open file `file` as `count` values of `T` in memory type `type`.
    private func read<T>(_ file: hid_t, _ name: String, _ type: hid_t, count: Int, as: T.Type, zero: T) -> [T] {
        let d = H5Dopen2(file, name, shard_h5p_default())
        defer { H5Dclose(d) }
        var out = [T](repeating: zero, count: count)
        let status = out.withUnsafeMutableBytes {
            H5Dread(d, type, shard_h5s_all(), shard_h5s_all(), shard_h5p_default(), $0.baseAddress)
        }
        #expect(status >= 0, "H5Dread \(name)")
        return out
    }

    private func dims(_ file: hid_t, _ name: String) -> [UInt64] {
        let d = H5Dopen2(file, name, shard_h5p_default())
        defer { H5Dclose(d) }
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        var dims = [hsize_t](repeating: 0, count: Int(H5Sget_simple_extent_ndims(space)))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { UInt64($0) }
    }

    @Test("libhdf5 reads the arrays (converted to C order, little-endian), labels, keys, presence and attributes")
    func readBack() throws {
        let fx = try Fixture()
        let report = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out), compression: .gzip(level: 4))
        #expect(report.samples == 4 && report.members == 7)
        #expect(report.entries == ["keys", "cls", "npy", "npy_present"])
        #expect(report.choice.strategy == .mmap)
        #expect(
            report.bytesWritten
                == (try FileManager.default.attributesOfItem(atPath: fx.out)[.size] as? NSNumber)?.int64Value)

        try HDF5Library.locked {
            let file = H5Fopen(fx.out, 0, shard_h5p_default())  // H5F_ACC_RDONLY
            #expect(file >= 0)
            defer { H5Fclose(file) }
            #expect(dims(file, "npy") == [4, 2, 3])
            let values = read(file, "npy", shard_h5t_ieee_f32le(), count: 24, as: Float.self, zero: -1)
            var expected = fx.arrays.flatMap { $0 }
            for j in 12..<18 { expected[j] = 0 }  // k2 lacks its .npy: zeros
            #expect(values == expected)
            #expect(read(file, "cls", shard_h5t_native_int64(), count: 4, as: Int64.self, zero: -1) == [0, 7, 14, 21])
            #expect(
                read(file, "npy_present", shard_h5t_native_int8(), count: 4, as: Int8.self, zero: -1) == [1, 1, 0, 1])
            // Keys: variable-length strings, read as C strings.
            let type = try HDF5Type.utf8String(path: "test")
            let d = H5Dopen2(file, "keys", shard_h5p_default())
            defer { H5Dclose(d) }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: 4)
            #expect(H5Dread(d, type.id, shard_h5s_all(), shard_h5s_all(), shard_h5p_default(), &pointers) >= 0)
            #expect(pointers.map { $0.map { String(cString: $0) } } == ["k0", "k1", "k2", "k3"])
            let space = H5Dget_space(d)
            H5Dvlen_reclaim(type.id, space, shard_h5p_default(), &pointers)
            H5Sclose(space)
            // The kind attribute of /npy.
            let npy = H5Dopen2(file, "npy", shard_h5p_default())
            defer { H5Dclose(npy) }
            let attribute = H5Aopen(npy, "shardstore_kind", shard_h5p_default())
            defer { H5Aclose(attribute) }
            var text: UnsafeMutablePointer<CChar>? = nil
            #expect(H5Aread(attribute, type.id, &text) >= 0)
            #expect(text.map { String(cString: $0) } == "array")
            free(text)
        }
    }

    @Test("a .npy member that does not parse names the key, the shard and the offset; nothing is written")
    func badMember() throws {
        let bad = npy("<c16", shape: [1], data: [UInt8](repeating: 0, count: 16))
        let fx = try Fixture(extra: ["k9.npy": bad])
        let member = try #require(fx.located["k9.npy"])
        #expect(
            throws: ExportError.badMember(
                key: "k9", ext: "npy", shard: member.shard, offset: member.offset,
                reason:
                    "unsupported dtype '<c16' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
            )
        ) {
            _ = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out))
        }
        #expect(!exists(fx.out))
        #expect(try partialFiles(fx.directory.path) == [])
        let text = String(
            describing: ExportError.badMember(key: "k9", ext: "npy", shard: "shard-1.tar", offset: 2560, reason: "x"))
        #expect(
            text
                == "cannot decode member 'k9.npy' of 'shard-1.tar' at byte offset 2560: x; fix or drop the member, or leave the extension out with --ext"
        )
    }

    @Test("extensions whose datasets would collide with the layout's names are refused before anything is written")
    func collisions() throws {
        let fx = try Fixture(extra: ["k0.keys": [1], "k0.npy_present": [2]])
        #expect(
            throws: ExportError.invalidArgument(
                "cannot lay out the HDF5 file: '/keys' of the .keys members would collide with the sample keys; '/npy_present' of the .npy_present members would collide with '/npy_present' of the .npy members; leave those extensions out with --ext, or export with --format raw"
            )
        ) {
            _ = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out))
        }
        #expect(!exists(fx.out))
        #expect(try partialFiles(fx.directory.path) == [])
        // Without them the export works.
        let report = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out, extensions: ["npy", "cls"]))
        #expect(report.entries == ["keys", "cls", "npy", "npy_present"])
    }

    @Test("an existing output is refused without overwrite and replaced whole with it")
    func existingOutput() throws {
        let fx = try Fixture()
        try Data("old".utf8).write(to: URL(fileURLWithPath: fx.out))
        #expect(throws: ExportError.outputExists(path: fx.out)) {
            _ = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: fx.out)) == Data("old".utf8))
        _ = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out, overwrite: true))
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: fx.out)).prefix(8)
                == Data([0x89] + Array("HDF\r\n".utf8) + [0x1A, 0x0A]))
    }

    @Test(
        "cancelled after some samples, in either pass and with or without staging: no file, the old one kept",
        arguments: [(1, nil), (2, nil), (3, 0), (6, 0), (7, 0), (8, nil)] as [(Int, Int64?)])
    func cancelled(afterPolls polls: Int, stagingLimit: Int64?) throws {
        let fx = try Fixture()
        try Data("old".utf8).write(to: URL(fileURLWithPath: fx.out))
        let calls = Mutex(0)
        #expect(throws: ExportError.cancelled) {
            _ = try HDF5Export.run(
                ExportRequest(index: fx.index, out: fx.out, overwrite: true), compression: .gzip(level: 4),
                progress: nil,
                isCancelled: {
                    calls.withLock {
                        $0 += 1
                        return $0 > polls
                    }
                }, stagingLimit: stagingLimit)
        }
        #expect(calls.withLock { $0 } == polls + 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fx.out)) == Data("old".utf8))
        #expect(try partialFiles(fx.directory.path) == [])
    }

    @Test("progress goes through planning, writing and publishing, ending with every sample")
    func progress() throws {
        let fx = try Fixture()
        let seen = Mutex<[ExportProgress]>([])
        _ = try HDF5Export.run(
            ExportRequest(index: fx.index, out: fx.out), progress: { p in seen.withLock { $0.append(p) } })
        let all = seen.withLock { $0 }
        #expect(all.first?.phase == .planning && all.first?.samplesDone == 0)
        #expect(all.last?.phase == .publishing && all.last?.samplesDone == 4 && all.last?.samplesTotal == 4)
        #expect(all.contains { $0.phase == .writing && $0.samplesDone == 4 })
        #expect(
            all.last?.bytes == 3 * Int64(npy("<f4", shape: [2, 3], data: float32Bytes([0, 0, 0, 0, 0, 0])).count) + 6)
    }

    @Test("a metadata key that is one of the export's own attribute names is refused")
    func metadataCollision() throws {
        let fx = try Fixture()
        _ = try MetadataEditor.set(index: fx.index, key: "shardstore_version", value: "1", asString: false)
        #expect(
            throws: ExportError.invalidArgument(
                "the index's metadata key 'shardstore_version' has the name of an attribute the export writes itself; rename it with `shardstore meta`"
            )
        ) {
            _ = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out))
        }
        #expect(!exists(fx.out))
    }
}

import Foundation
import ShardStore
import ShardTestSupport
import Testing

// Helpers for the HDF5 export tests: a Python with h5py and numpy, fixture shards from a folder of
// member files, and a little NPY writer of our own (independent of ShardCore's reader).

/// A Python interpreter that imports `modules` (`"h5py, numpy"`): SHARDSTORE_TEST_PYTHON, then the
/// project's `.build-venv` (made by `tools/setup-system`), then `python3`. Under CI (env `CI` set)
/// a missing one is a test failure, not a skip.
func testPython(importing modules: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    let environment = ProcessInfo.processInfo.environment
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    let candidates = [environment["SHARDSTORE_TEST_PYTHON"], repository + "/.build-venv/bin/python", "python3"]
    for python in candidates.compactMap({ $0 }) {
        if python.hasPrefix("/"), !FileManager.default.isExecutableFile(atPath: python) { continue }
        if let r = try? runProcess(python, ["-c", "import \(modules)"]), r.status == 0 { return python }
    }
    if environment["CI"] != nil {
        Issue.record(
            "\(modules) not importable: run tools/setup-system (it makes .build-venv)", sourceLocation: sourceLocation)
    }
    return nil
}

/// ``testPython(importing:sourceLocation:)`` for h5py and numpy.
func pythonWithH5py(sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    testPython(importing: "h5py, numpy", sourceLocation: sourceLocation)
}

/// Writes `files` (name → bytes, names `KEY.EXT`) into tar shards in `directory`: the keys in
/// sorted order, cut into `shards` shards of consecutive keys, each sample's members in sorted
/// order. Returns the shard names and every member's shard and data offset.
@discardableResult
func writeShards(_ files: [String: [UInt8]], shards: Int, in directory: String) throws -> [String: (
    shard: String, offset: Int64
)] {
    var byKey: [String: [String]] = [:]
    for name in files.keys {
        let key = String(name.prefix { $0 != "." })
        byKey[key, default: []].append(name)
    }
    let keys = byKey.keys.sorted()
    let perShard = (keys.count + shards - 1) / shards
    var located: [String: (shard: String, offset: Int64)] = [:]
    for s in 0..<shards {
        var tar = TarWriter(format: .ustar)
        let name = "shard-\(s).tar"
        for key in keys.dropFirst(s * perShard).prefix(perShard) {
            for member in byKey[key]!.sorted() {
                let entry = tar.addFile(member, files[member]!)
                located[member] = (name, entry.dataOffset)
            }
        }
        tar.finish()
        try tar.write(to: directory + "/" + name)
    }
    return located
}

/// The files of `directory` (not recursive) by name.
func readFiles(_ directory: String) throws -> [String: [UInt8]] {
    var out: [String: [UInt8]] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
        out[name] = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
    }
    return out
}

/// An NPY version 1.0 member: `descr` and `shape` as Python writes them, `data` as stored.
func npy(_ descr: String, shape: [Int], fortran: Bool = false, data: [UInt8]) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = Array(
        "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }".utf8)
    header += [UInt8](repeating: 0x20, count: (64 - (10 + header.count + 1) % 64) % 64) + [0x0A]
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header + data
}

/// The little-endian bytes of `values`.
func float32Bytes(_ values: [Float], bigEndian: Bool = false) -> [UInt8] {
    values.flatMap { v -> [UInt8] in
        let bits = bigEndian ? v.bitPattern.byteSwapped : v.bitPattern
        return (0..<4).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) }
    }
}

/// The names in `directory` that an export leaves while it runs (its temporary files).
func partialFiles(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains("shardstore-partial") }
}

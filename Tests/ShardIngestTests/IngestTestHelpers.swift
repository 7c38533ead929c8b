import Foundation
import ShardStore
import ShardTestSupport
import Testing

// Helpers shared by the ShardIngest behaviour tests. Expectations are computed here independently
// of the code under test (the key rule below is a plain re-statement for the simple names the
// fixtures use: no newlines, ASCII extensions).

/// A file that goes into a fixture shard.
struct FixtureFile: Sendable {
    var name: String
    var bytes: [UInt8]
}

/// What a test expects of one sample.
struct ExpectedSample: Equatable, CustomStringConvertible {
    var key: SampleKey
    var members: [String: [UInt8]]
    var description: String { "\(key) \(members.keys.sorted())" }
}

/// Deterministic bytes.
func pattern(_ count: Int, seed: Int = 1) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ ($0 >> 8)) }
}

/// (key, lower-cased extension) for a member name: the key runs up to the first `.` of the
/// basename. Only for fixture names (a basename with a non-leading dot, ASCII extension).
func splitName(_ name: String) -> (key: SampleKey, ext: String) {
    let bytes = Array(name.utf8)
    let lastSlash = bytes.lastIndex(of: UInt8(ascii: "/")) ?? -1
    let dot = bytes[(lastSlash + 1)...].firstIndex(of: UInt8(ascii: "."))!
    let ext = String(decoding: bytes[(dot + 1)...], as: UTF8.self).lowercased()
    return (SampleKey(bytes: bytes[..<dot]), ext)
}

/// Groups member files into expected samples, in order of first appearance.
func expectedSamples(_ files: [FixtureFile]) -> [ExpectedSample] {
    var out: [ExpectedSample] = []
    for f in files {
        let (key, ext) = splitName(f.name)
        if let i = out.firstIndex(where: { $0.key == key }) {
            out[i].members[ext] = f.bytes
        } else {
            out.append(ExpectedSample(key: key, members: [ext: f.bytes]))
        }
    }
    return out
}

/// Every sample of `dataset` with its bytes, in position order.
func loadAll(_ dataset: Dataset) throws -> [ExpectedSample] {
    try (0..<dataset.count).map { i in
        let s = try dataset[i]
        return ExpectedSample(key: s.key, members: s.members)
    }
}

/// Checks the dataset at `index` holds exactly `expected` (same count; every sample's key,
/// extensions and bytes), in order when `ordered`, else matched by key.
func expectDataset(
    _ index: String, equals expected: [ExpectedSample], ordered: Bool,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let dataset = try Dataset(index: index)
    #expect(dataset.count == expected.count, sourceLocation: sourceLocation)
    let actual = try loadAll(dataset)
    if ordered {
        #expect(actual.map(\.key) == expected.map(\.key), sourceLocation: sourceLocation)
        for (a, e) in zip(actual, expected) {
            #expect(a.members.keys.sorted() == e.members.keys.sorted(), "\(e.key)", sourceLocation: sourceLocation)
            #expect(a == e, "bytes of \(e.key)", sourceLocation: sourceLocation)
        }
    } else {
        #expect(actual.map(\.key).sorted() == expected.map(\.key).sorted(), sourceLocation: sourceLocation)
        for e in expected {
            let a = try dataset.sample(forKey: e.key)
            #expect(a.members.keys.sorted() == e.members.keys.sorted(), "\(e.key)", sourceLocation: sourceLocation)
            #expect(a.members == e.members, "bytes of \(e.key)", sourceLocation: sourceLocation)
        }
    }
    // Every sample's global index is its position, dense 0..<count.
    #expect(
        try (0..<dataset.count).map { try dataset.globalIndex(at: $0) } == Array(0..<dataset.count),
        sourceLocation: sourceLocation)
}

/// The error `body` throws, or nil.
func caught(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// A file's bytes.
func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Writes `bytes` to `path`.
func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Sets a file's modification time (and access time) to `seconds` + `nanoseconds` since the epoch.
func setModificationTime(_ path: String, seconds: Int, nanoseconds: Int = 0) throws {
    var times = [
        timespec(tv_sec: seconds, tv_nsec: nanoseconds), timespec(tv_sec: seconds, tv_nsec: nanoseconds),
    ]
    guard utimensat(AT_FDCWD, path, &times, 0) == 0 else {
        throw CocoaError(.fileWriteUnknown, userInfo: ["path": path])
    }
}

/// A file's modification time in ns.
func modificationTime(_ path: String) throws -> Int64 {
    var st = stat()
    guard stat(path, &st) == 0 else { throw CocoaError(.fileReadNoSuchFile) }
    return Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
}

/// The names in a folder, sorted.
func listing(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
}

/// A ustar shard holding `files` in order, written to `path`.
@discardableResult
func writeShard(_ path: String, _ files: [(String, [UInt8])], format: TarWriter.Format = .ustar) throws -> TarWriter {
    var tar = TarWriter(format: format)
    for (name, bytes) in files { tar.addFile(name, bytes) }
    tar.finish()
    try tar.write(to: path)
    return tar
}

/// Skip counts built from labelled values.
func skips(
    directories: Int = 0, symlinks: Int = 0, hardLinks: Int = 0, otherTypes: Int = 0, metadataNames: Int = 0,
    noExtension: Int = 0
) -> SkipCounts {
    var s = SkipCounts()
    s.directories = directories
    s.symlinks = symlinks
    s.hardLinks = hardLinks
    s.otherTypes = otherTypes
    s.metadataNames = metadataNames
    s.noExtension = noExtension
    return s
}

/// The keys of the samples in split `name`, in position order.
func splitKeys(_ index: String, _ name: String) throws -> [SampleKey] {
    let ds = try Dataset(index: index, split: name)
    return try (0..<ds.count).map { try ds.key(at: $0) }
}

/// (key, split) of every sample in global order.
func keysAndSplits(_ index: String) throws -> [(String, String?)] {
    let reader = try IndexReader(path: index)
    return try (0..<reader.sampleCount()).map { i in
        let r = try reader.sample(at: i)
        return (r.key.description, r.split)
    }
}

/// The Python interpreter that can import webdataset, if any: `SHARDSTORE_TEST_PYTHON`, the
/// project's `.build-venv` (made by tools/setup-system, which tools/test runs), the benchmark
/// venv under `BENCH_ROOT`, then `python3`.
func pythonWithWebDataset() -> String? {
    let environment = ProcessInfo.processInfo.environment
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    var candidates = [environment["SHARDSTORE_TEST_PYTHON"], repository + "/.build-venv/bin/python"]
    if let bench = environment["BENCH_ROOT"] { candidates.append(bench + "/venv/bin/python") }
    candidates.append("python3")
    for python in candidates.compactMap({ $0 }) {
        if python.hasPrefix("/"), !FileManager.default.isExecutableFile(atPath: python) { continue }
        if let r = try? runProcess(python, ["-c", "import webdataset"]), r.status == 0 { return python }
    }
    return nil
}

/// A split assignment as comparable text (its initializer is internal to ShardIndex).
func describe(_ a: IndexWriter.SplitAssignment?) -> String {
    guard let a else { return "nil" }
    let moved = a.movedFrom.keys.sorted().map { "\($0):\(a.movedFrom[$0]!)" }.joined(separator: ",")
    return "\(a.split) added=\(a.added) unchanged=\(a.unchanged) movedFrom=[\(moved)] total=\(a.total)"
}

func describe(_ list: [IndexWriter.SplitAssignment]) -> [String] { list.map { describe($0) } }

/// The text `describe` gives for an assignment with these values.
func assigned(_ split: String, added: Int, unchanged: Int = 0, movedFrom: [String: Int] = [:], total: Int) -> String {
    let moved = movedFrom.keys.sorted().map { "\($0):\(movedFrom[$0]!)" }.joined(separator: ",")
    return "\(split) added=\(added) unchanged=\(unchanged) movedFrom=[\(moved)] total=\(total)"
}

import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

// Helpers for the raw export tests. Expected files are computed here from the fixture's member
// names with a plain re-statement of the key rule for the simple names used (a basename with a
// non-leading dot), independently of the exporter.

/// One fixture shard: its file name and its members (name, bytes), in tar order.
struct RawShard {
    var name: String
    var members: [(name: String, bytes: [UInt8])]
}

/// Deterministic bytes covering every byte value.
func rawBytes(_ count: Int, seed: Int) -> [UInt8] {
    var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 &+ 7
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}

/// (key, lower-cased extension) of a fixture member name.
func rawKeyAndExt(_ name: String) -> (key: String, ext: String) {
    let bytes = Array(name.utf8)
    let lastSlash = bytes.lastIndex(of: UInt8(ascii: "/")) ?? -1
    let dot = bytes[(lastSlash + 1)...].firstIndex(of: UInt8(ascii: "."))!
    return (
        String(decoding: bytes[..<dot], as: UTF8.self),
        String(decoding: bytes[(dot + 1)...], as: UTF8.self).lowercased()
    )
}

/// A sample as a test expects it: key and members by extension.
struct RawSample: Equatable {
    var key: String
    var members: [String: [UInt8]]
}

/// The samples of `shards` in index order (first appearance of each key, shard after shard).
func rawSamples(_ shards: [RawShard]) -> [RawSample] {
    var out: [RawSample] = []
    var at: [String: Int] = [:]
    for shard in shards {
        for m in shard.members {
            let (key, ext) = rawKeyAndExt(m.name)
            if let i = at[key] {
                out[i].members[ext] = m.bytes
            } else {
                at[key] = out.count
                out.append(RawSample(key: key, members: [ext: m.bytes]))
            }
        }
    }
    return out
}

/// A temporary folder with fixture shards and an index built from them.
struct RawWorkspace {
    let directory: TemporaryDirectory
    let shards: [RawShard]
    var path: String { directory.path }
    var index: String { path + "/index.sqlite" }

    /// Writes `shards` (ustar, or `format`) and ingests them.
    init(_ shards: [RawShard], format: TarWriter.Format = .ustar, onDuplicate: DuplicatePolicy = .error) throws {
        directory = try TemporaryDirectory(prefix: "shardstore-raw")
        self.shards = shards
        for shard in shards {
            var tar = TarWriter(format: format)
            for m in shard.members { tar.addFile(m.name, m.bytes) }
            tar.finish()
            try tar.write(to: path + "/" + shard.name)
        }
        var options = IngestOptions()
        options.onDuplicate = onDuplicate
        _ = try Ingest.run(index: index, shards: shards.map { path + "/" + $0.name }, options: options)
    }

    /// The standard fixture: two shards, keys with subfolders, a two-dot extension, a sample
    /// lacking a member, an upper-case extension, and an empty member.
    static func standard() throws -> RawWorkspace {
        var a: [(String, [UInt8])] = []
        for i in 0..<5 {
            let key = String(format: "%06d", i)
            a.append(("\(key).jpg", rawBytes(300 + 211 * i, seed: i)))
            a.append(("\(key).cls", Array("\(i % 3)".utf8)))
            if i != 2 { a.append(("\(key).seg.png", rawBytes(100 + i, seed: 50 + i))) }
        }
        a.append(("empty.jpg", []))
        a.append(("empty.cls", Array("9".utf8)))
        var b: [(String, [UInt8])] = []
        for i in 0..<4 {
            let key = "cats/sub.d/\(String(format: "%04d", i))"
            b.append(("\(key).JPG", rawBytes(700 + 5 * i, seed: 100 + i)))
            b.append(("\(key).cls", Array("\(i)".utf8)))
        }
        b.append(("dogs/0001.jpg", rawBytes(4097, seed: 999)))
        return try RawWorkspace([RawShard(name: "a.tar", members: a), RawShard(name: "b.tar", members: b)])
    }

    var samples: [RawSample] { rawSamples(shards) }

    /// Assigns the samples with `keys` to split `name`.
    func assign(_ name: String, keys: [String]) throws {
        _ = try SplitEditor.assign(
            index: index, split: name, selection: .keys(keys.map { SampleKey($0) }, source: "test"))
    }

    /// Exports split `split` with `extensions` in `layout` once per strategy (memory, mmap,
    /// pread), each to `out-<strategy>`.
    func exportWithEachStrategy(_ split: String, _ extensions: [String], _ layout: RawLayout) throws
        -> [(LoadingStrategy, String, ExportReport)]
    {
        try [LoadingStrategy.memory, .mmap, .pread].map { strategy in
            let out = path + "/out-\(strategy.rawValue)"
            let request = ExportRequest(
                index: index, out: out, splits: [split], extensions: extensions, strategy: strategy)
            return (strategy, out, try RawExport.run(request, layout: layout))
        }
    }

    /// The names in the workspace folder, sorted.
    func listing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    /// The temporary folder an export to `out` in this process is writing into
    /// (`.OUT.shardstore-partial-PID-RANDOM`), or, when there is none, a path that does not exist.
    func temporary(of out: String) -> String {
        Self.temporary(of: out, in: path)
    }

    /// ``temporary(of:)`` in the folder `path`.
    static func temporary(of out: String, in path: String) -> String {
        let prefix = ".\(out).shardstore-partial-\(getpid())-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        if let name = names.first(where: { $0.hasPrefix(prefix) }) { return path + "/" + name }
        return path + "/" + prefix + "(none)"
    }
}

/// Every regular file below `root`, relative to it, with its bytes; folders and links listed
/// with a trailing `/` or `@`.
func tree(_ root: String) throws -> [String: [UInt8]] {
    var out: [String: [UInt8]] = [:]
    func walk(_ relative: String) throws {
        let full = relative.isEmpty ? root : root + "/" + relative
        for name in try FileManager.default.contentsOfDirectory(atPath: full) {
            let child = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(root + "/" + child, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                out[child + "/"] = []
                try walk(child)
            case S_IFREG:
                out[child] = [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + child)))
            default:
                out[child + "@"] = []
            }
        }
    }
    try walk("")
    return out
}

/// The tree a files-layout export of `samples` should produce under `prefix` (`""` or `"val/"`),
/// folders included.
func expectedFiles(_ samples: [RawSample], prefix: String = "", extensions: [String]? = nil) -> [String: [UInt8]] {
    var out: [String: [UInt8]] = [:]
    if !prefix.isEmpty { out[prefix] = [] }
    for s in samples {
        for (ext, bytes) in s.members where extensions?.contains(ext) ?? true {
            let path = prefix + s.key + "." + ext
            out[path] = bytes
            var parts = path.split(separator: "/").dropLast()
            while !parts.isEmpty {
                out[parts.joined(separator: "/") + "/"] = []
                parts.removeLast()
            }
        }
    }
    return out
}

/// Whether anything exists at `path` (links not followed).
func exists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

/// A file's bytes.
func fileBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// The error `body` throws, or nil.
func thrown(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// Parses an NPY 1.0 file holding a one-dimensional `<i8` array, checking the header exactly.
func readOffsets(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [Int64] {
    let bytes = try fileBytes(path)
    #expect(Array(bytes.prefix(8)) == [0x93] + Array("NUMPY".utf8) + [1, 0], sourceLocation: sourceLocation)
    let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
    let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
    let count = (bytes.count - 10 - headerLength) / 8
    let dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (\(count),), }"
    #expect(header.hasPrefix(dict), "header: \(header)", sourceLocation: sourceLocation)
    #expect(header.hasSuffix("\n") && (10 + headerLength) % 64 == 0, sourceLocation: sourceLocation)
    #expect(
        header.dropFirst(dict.count).dropLast().allSatisfy { $0 == " " }, "padding: \(header)",
        sourceLocation: sourceLocation)
    return (0..<count).map { i in
        var v: Int64 = 0
        for b in 0..<8 { v |= Int64(bytes[10 + headerLength + i * 8 + b]) << (8 * b) }
        return v
    }
}

/// Checks a packed folder against `samples` (in export order): keys.txt, and for each of
/// `extensions` the `.bin` and `.offsets.npy`, byte for byte.
func expectPacked(
    _ folder: String, _ samples: [RawSample], extensions: [String], sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    #expect(
        names == (extensions.flatMap { [$0 + ".bin", $0 + ".offsets.npy"] } + ["keys.txt"]).sorted(),
        sourceLocation: sourceLocation)
    #expect(
        try fileBytes(folder + "/keys.txt") == Array(samples.map { $0.key + "\n" }.joined().utf8),
        sourceLocation: sourceLocation)
    for ext in extensions {
        let bin = try fileBytes(folder + "/\(ext).bin")
        let offsets = try readOffsets(folder + "/\(ext).offsets.npy", sourceLocation: sourceLocation)
        #expect(offsets.count == samples.count + 1, "\(ext)", sourceLocation: sourceLocation)
        guard offsets.count == samples.count + 1 else { continue }
        #expect(offsets.first == 0 && offsets.last == Int64(bin.count), "\(ext)", sourceLocation: sourceLocation)
        for (i, s) in samples.enumerated() {
            let range = Int(offsets[i])..<Int(offsets[i + 1])
            #expect(
                Array(bin[range]) == (s.members[ext] ?? []), "\(ext) of \(s.key)", sourceLocation: sourceLocation)
        }
    }
}

/// A flag other threads may set and read.
final class Flag: Sendable {
    private let value = Mutex(0)
    /// Adds one and returns the new count.
    func increment() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
    var count: Int { value.withLock { $0 } }
}

import CShardStoreABI
import Foundation
import ShardStore
import ShardStoreC
import ShardTestSupport

#if canImport(Glibc)
    import Glibc
#endif

// Helpers for the C ABI tests: they call the functions of shardstore.h as C declares them (the
// CShardStoreABI module), which link to ShardStoreC's @c functions.

/// One expected member: its extension and bytes.
struct ExpectedMember: Equatable, CustomStringConvertible {
    var ext: String
    var bytes: [UInt8]
    var description: String { ".\(ext) (\(bytes.count) bytes)" }
}

/// One expected sample, in the index's global order.
struct ExpectedSample: Equatable {
    var key: [UInt8]
    var members: [ExpectedMember]
}

/// What `shardstore_get` gave, copied out of the lease.
struct ReadSample: Equatable {
    var key: [UInt8]
    var position: Int64
    var index: Int64
    var members: [ExpectedMember]
}

/// Deterministic bytes.
func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ ($0 >> 8)) }
}

/// Two shards, 11 samples: `jpg` of 0 to 9 kB, `cls`, `json` on most, `seg.png` on one, a key in a
/// folder and a key that is not UTF-8; a `val` split of 4 samples listed out of storage order, a
/// `train` split of the rest; two metadata entries.
struct CABIFixture {
    let directory: TemporaryDirectory
    let index: String
    /// Every sample, in global order.
    var samples: [ExpectedSample] = []

    /// The keys of split `val`, in the order they were assigned (its positions follow global order).
    static let valKeys = ["k7", "k1", "dir/k9", "k4"]

    init() throws {
        directory = try TemporaryDirectory(prefix: "shardstore-cabi")
        var paths: [String] = []
        var n = 0
        for s in 0..<2 {
            var tar = TarWriter(format: s == 0 ? .ustar : .pax)
            for _ in 0..<(s == 0 ? 5 : 6) {
                let key: [UInt8] =
                    n == 9 ? Array("dir/k9".utf8) : n == 10 ? [0x6b, 0xff, 0x31, 0x30] : Array("k\(n)".utf8)
                var members = [
                    ExpectedMember(ext: "jpg", bytes: pattern(n == 3 ? 0 : 900 * n + 17, seed: n)),
                    ExpectedMember(ext: "cls", bytes: Array(String(n % 3).utf8)),
                ]
                if n % 4 != 2 { members.append(ExpectedMember(ext: "json", bytes: Array("{\"n\": \(n)}".utf8))) }
                if n == 6 { members.append(ExpectedMember(ext: "seg.png", bytes: pattern(333, seed: 99))) }
                for m in members { tar.addFile(name: key + Array(".\(m.ext)".utf8), data: m.bytes) }
                samples.append(ExpectedSample(key: key, members: members))
                n += 1
            }
            tar.finish()
            let path = directory.path + "/shard-\(s).tar"
            try tar.write(to: path)
            paths.append(path)
        }
        index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: paths)
        _ = try SplitEditor.assign(
            index: index, split: "val", selection: .keys(Self.valKeys.map { SampleKey($0) }, source: "test"))
        let train = samples.map(\.key).filter { !Self.valKeys.map { Array($0.utf8) }.contains($0) }
        _ = try SplitEditor.assign(
            index: index, split: "train", selection: .keys(train.map { SampleKey(bytes: $0) }, source: "test"))
        try MetadataEditor.set(index: index, key: "description", value: "a \"small\" fixture")
        try MetadataEditor.set(index: index, key: "classes", value: "[\"a\", \"b\", \"c\"]")
    }

    /// The expected samples of split `name` in position order (global order), or of the whole
    /// dataset, limited to `extensions` (nil: all).
    func expected(split: String?, extensions: [String]? = nil) -> [ExpectedSample] {
        var list = samples
        if let split {
            let val = Self.valKeys.map { Array($0.utf8) }
            list = list.filter { split == "val" ? val.contains($0.key) : !val.contains($0.key) }
        }
        if let extensions {
            list = list.map { ExpectedSample(key: $0.key, members: $0.members.filter { extensions.contains($0.ext) }) }
        }
        return list
    }

    /// The global index of the sample with `key`.
    func globalIndex(of key: [UInt8]) -> Int { samples.firstIndex { $0.key == key }! }
}

/// Open options whose strings live as long as the value.
final class OpenOptions {
    private var owned: [UnsafeMutablePointer<CChar>] = []
    private let list: UnsafeMutablePointer<UnsafePointer<CChar>?>
    var options = shardstore_open_options()

    init(
        strategy: String? = nil, lookup: String? = nil, split: String? = nil, extensions: [String]? = nil,
        memoryLimit: String? = nil, verifyHeaders: Bool = true, cacheDirectory: String? = nil,
        cacheLimit: String? = nil
    ) {
        list = .allocate(capacity: max(extensions?.count ?? 0, 1))
        shardstore_open_options_init(&options)
        options.verify_headers = verifyHeaders ? 1 : 0
        options.strategy = strategy.map { keep($0) }
        options.lookup = lookup.map { keep($0) }
        options.split = split.map { keep($0) }
        options.memory_limit = memoryLimit.map { keep($0) }
        options.cache_dir = cacheDirectory.map { keep($0) }
        options.cache_limit = cacheLimit.map { keep($0) }
        if let extensions {
            for (i, e) in extensions.enumerated() { list[i] = keep(e) }
            options.extensions = UnsafePointer(list)
            options.extension_count = extensions.count
        }
    }

    deinit {
        for p in owned { free(p) }
        list.deallocate()
    }

    private func keep(_ text: String) -> UnsafePointer<CChar> {
        let p = strdup(text)!
        owned.append(p)
        return UnsafePointer(p)
    }
}

/// A status with its message (nil when there was none), freeing the message.
struct Outcome: Equatable, CustomStringConvertible {
    var status: shardstore_status
    var message: String?
    var description: String { "\(status.rawValue): \(message ?? "(no message)")" }

    static let ok = Outcome(status: SHARDSTORE_OK, message: nil)
}

/// Calls `body` with an error slot and returns its status and message.
func outcome(_ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> shardstore_status) -> Outcome {
    var error: UnsafeMutablePointer<CChar>?
    let status = body(&error)
    defer { shardstore_string_free(error) }
    return Outcome(status: status, message: error.map { String(cString: $0) })
}

/// Opens `index` with `options`: the dataset, or the failure.
func open(_ index: String, _ options: OpenOptions? = nil) -> (OpaquePointer?, Outcome) {
    var dataset: OpaquePointer?
    let result = outcome { error in
        if let options { return shardstore_open(index, &options.options, &dataset, error) }
        return shardstore_open(index, nil, &dataset, error)
    }
    return (dataset, result)
}

/// A copy of what `sample` describes.
func copy(_ sample: shardstore_sample) -> ReadSample {
    let key = Array(UnsafeBufferPointer(start: sample.key, count: sample.key_length))
    let members = (0..<sample.member_count).map { i in
        let m = sample.members[i]
        let ext = String(decoding: UnsafeRawBufferPointer(start: m.ext, count: m.ext_length), as: UTF8.self)
        let bytes = m.length == 0 ? [] : Array(UnsafeRawBufferPointer(start: m.data, count: Int(m.length)))
        return ExpectedMember(ext: ext, bytes: bytes)
    }
    return ReadSample(key: key, position: sample.position, index: sample.index, members: members)
}

/// The sample at `position` through `shardstore_get`, or the failure.
func get(_ dataset: OpaquePointer?, _ position: Int64) -> Result<ReadSample, OutcomeError> {
    var sample = shardstore_sample()
    var lease: OpaquePointer?
    let result = outcome { shardstore_get(dataset, position, &sample, &lease, $0) }
    guard result == .ok else { return .failure(OutcomeError(outcome: result)) }
    defer { shardstore_lease_release(lease) }
    return .success(copy(sample))
}

/// A failed call's outcome as an error.
struct OutcomeError: Error, Equatable {
    var outcome: Outcome
}

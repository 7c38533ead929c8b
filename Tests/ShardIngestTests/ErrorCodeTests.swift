import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// `ErrorCode(classifying:)` on errors that real calls throw: the codes the C ABI returns and
/// Python turns into exception classes.
@Suite("Error codes of real failures")
struct ErrorCodeTests {
    static let lookups: [Dataset.LookupMode] = [.table, .file, .statements]

    /// The code of what `body` throws; nil when it throws nothing.
    func code(_ body: () throws -> Void) -> ErrorCode? {
        caught(body).map { ErrorCode(classifying: $0) }
    }

    @Test("an index that is missing, a directory, or not an SQLite file")
    func notAnIndex() throws {
        let dir = try TemporaryDirectory()
        #expect(code { _ = try Dataset(index: dir.path + "/none.sqlite") } == .indexNotFound)
        #expect(code { _ = try Dataset(index: dir.path) } == .notAnIndex)
        let text = dir.path + "/notes.sqlite"
        try Data(repeating: 0x61, count: 4096).write(to: URL(fileURLWithPath: text))
        let error = try #require(caught { _ = try Dataset(index: text) })
        #expect(ErrorCode(classifying: error) == .notAnIndex, "\(error)")
    }

    @Test("positions, keys, splits and extensions that the index does not have", arguments: lookups)
    func lookupsThatFail(lookup: Dataset.LookupMode) throws {
        let f = try StrategyFixture(shards: 2, perShard: 3)
        let options = Dataset.Options(lookup: lookup)
        let all = try Dataset(index: f.index, options: options)
        #expect(code { _ = try all.sample(at: 6) } == .outOfRange)
        #expect(code { _ = try all.key(at: -1) } == .outOfRange)
        #expect(code { _ = try all.sample(forKey: SampleKey("nope")) } == .unknownKey)
        let reader = try IndexReader(path: f.index)
        let trainKey = try reader.sample(at: 0, inSplit: "train").key
        let val = try Dataset(index: f.index, split: "val", options: options)
        #expect(code { _ = try val.position(forKey: trainKey) } == .unknownKey)
        #expect(code { _ = try Dataset(index: f.index, split: "test", options: options) } == .unknownSplit)
        #expect(code { _ = try Dataset(index: f.index, extensions: ["png"], options: options) } == .unknownExtension)
    }

    @Test("a key that names several samples (duplicates kept)", arguments: lookups)
    func ambiguousKey(lookup: Dataset.LookupMode) throws {
        let dir = try TemporaryDirectory()
        let a = dir.path + "/a.tar"
        let b = dir.path + "/b.tar"
        try writeShard(a, [("x.jpg", [1]), ("y.jpg", [2])])
        try writeShard(b, [("x.jpg", [3])])
        let index = dir.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [a, b], options: IngestOptions(onDuplicate: .keep))
        let ds = try Dataset(index: index, options: Dataset.Options(lookup: lookup))
        #expect(code { _ = try ds.sample(forKey: SampleKey("x")) } == .ambiguousKey)
        #expect(try ds.sample(forKey: SampleKey("y")).members == ["jpg": [2]])
    }

    @Test("a shard changed since ingest, and one truncated while a dataset reads it")
    func changedShards() throws {
        let f = try StrategyFixture(shards: 2, perShard: 3)
        let shard = f.directory.path + "/shard-0.tar"
        let pread = try Dataset(index: f.index, strategy: .pread)
        #expect(truncate(shard, 1024) == 0)
        let truncated = try #require(caught { _ = try pread[2] })
        #expect(truncated is ShardChangedError)
        #expect(ErrorCode(classifying: truncated) == .shardChanged)
        #expect(code { _ = try Dataset(index: f.index, strategy: .pread) } == .shardChanged)
    }

    @Test("a member whose own tar header does not match the index")
    func corruptHeader() throws {
        let f = try SwappedShards(swap: true)
        let ds = try Dataset(index: f.index, strategy: .pread)
        let error = try #require(caught { _ = try ds[0] })
        #expect(error is MemberHeaderError)
        #expect(ErrorCode(classifying: error) == .corrupt)
    }

    @Test("the memory strategy without the table or the memory, and a bad memory limit")
    func badOptions() throws {
        let f = try StrategyFixture(shards: 1, perShard: 2)
        let file = Dataset.Options(lookup: .file)
        #expect(code { _ = try Dataset(index: f.index, strategy: .memory, options: file) } == .invalidArgument)
        let tiny = Dataset.Options(memory: MemoryFigures(memAvailable: 10))
        #expect(code { _ = try Dataset(index: f.index, strategy: .memory, options: tiny) } == .outOfMemory)
        let limit = try #require(
            caught { _ = try MemoryProbe.read(environment: [MemoryProbe.overrideVariable: "2X"]) })
        #expect(limit is MemorySizeError)
        #expect(ErrorCode(classifying: limit) == .invalidArgument)
        #expect(code { _ = try MemoryProbe.parseSize("-1G") } == .invalidArgument)
    }

    @Test("library messages use API words; the command line style names flags")
    func messageStyles() throws {
        let f = try StrategyFixture(shards: 1, perShard: 2)
        let error = try #require(
            caught { _ = try Dataset(index: f.index, strategy: .memory, options: Dataset.Options(lookup: .statements)) }
                as? DatasetError)
        #expect(error.mentions == [OptionSetting(.lookup, ["auto", "table"])])
        #expect(!error.description.contains("--"))
        #expect(error.message(.commandLine).hasSuffix("; use --lookup auto or table, or another strategy"))
        #expect(OptionSetting(.strategy, ["mmap", "pread"]).text(.api) == "strategy 'mmap' or 'pread'")
        #expect(OptionSetting(.strategy, ["mmap", "pread"]).text(.commandLine) == "--strategy mmap or pread")
    }
}

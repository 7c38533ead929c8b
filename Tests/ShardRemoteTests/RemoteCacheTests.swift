import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// Three shards of four samples each (a `.bin` of 3000 to 3300 bytes and a `.json`), written into
/// a folder, served by tools/remote-test-server.py http (which counts the requests for each
/// path), and ingested twice: from the local files (what remote reads must equal) and by URL.
final class ServedShards {
    let directory: TemporaryDirectory
    let files: String
    let server: TestServer
    let remoteIndex: String
    let localIndex: String
    /// The shards' names and sizes (all of a size).
    let names = ["shard-0.tar", "shard-1.tar", "shard-2.tar"]
    let shardSize: Int64

    init() throws {
        directory = try TemporaryDirectory()
        files = directory.path + "/files"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        var size: Int64 = 0
        for (n, name) in names.enumerated() {
            var tar = TarWriter()
            for i in 0..<4 {
                tar.addFile("s\(n)-\(i).bin", testBytes(3000 + 100 * i, seed: UInt64(n * 10 + i)))
                tar.addFile("s\(n)-\(i).json", Array("{\"shard\": \(n), \"i\": \(i)}".utf8))
            }
            tar.finish()
            try tar.write(to: files + "/" + name)
            size = Int64(tar.count)
        }
        shardSize = size
        server = try TestServer("http", [files])
        localIndex = directory.path + "/local.sqlite"
        remoteIndex = directory.path + "/remote.sqlite"
        _ = try Ingest.run(index: localIndex, shards: names.map { files + "/" + $0 })
        _ = try Ingest.run(index: remoteIndex, shards: ["\(server.baseURL)/shard-{0..2}.tar"])
    }

    deinit { server.stop() }

    /// A new, empty folder.
    func folder(_ name: String) throws -> String {
        let path = directory.path + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// How many requests (GET and HEAD) the server has had for shard `name`.
    func requests(_ name: String) throws -> Int {
        let client = RemoteClient(configuration: RemoteConfiguration())
        let location = try RemoteLocation(parsing: "\(server.baseURL)/_count/\(name)")
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = try buffer.withUnsafeMutableBytes { try client.read(location, at: 0, into: $0) }
        return Int(String(decoding: buffer[..<n], as: UTF8.self))!
    }

    func requests() throws -> [Int] { try names.map { try requests($0) } }

    /// The dataset on the remote index with the cache folder `folder` (limit `limit`, nil: the
    /// default) and retries cut short, so that a stopped server fails fast.
    func remote(cache folder: String?, limit: Int64? = nil) throws -> Dataset {
        var configuration = RemoteConfiguration()
        configuration.retry = RetryPolicy(maxAttempts: 1, initialDelay: 0.01, maxDelay: 0.01, totalSeconds: 1)
        return try Dataset(
            index: remoteIndex,
            options: Dataset.Options(cacheDirectory: folder, cacheLimit: limit, remote: configuration))
    }

    /// Every sample of the local ingest: key and members.
    func expected() throws -> [Sample] {
        let local = try Dataset(index: localIndex)
        return try (0..<local.count).map { try local[$0] }
    }

    /// The copies in `folder`, by name, with their bytes.
    func copies(in folder: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            out[name] = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
        }
        return out
    }

    /// The shard file's bytes as served.
    func shardBytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: files + "/" + name)))
    }
}

/// Reads every position of `dataset` in `order` and checks each sample against `expected`.
func expectSamples(
    _ dataset: Dataset, _ expected: [Sample], order: [Int], sourceLocation: SourceLocation = #_sourceLocation
)
    throws
{
    #expect(dataset.count == expected.count, sourceLocation: sourceLocation)
    for p in order {
        let sample = try dataset[p]
        #expect(sample.key == expected[p].key, sourceLocation: sourceLocation)
        #expect(sample.members == expected[p].members, "sample \(p)", sourceLocation: sourceLocation)
    }
}

/// Remote shards read through a cache folder (`Dataset.Options.cacheDirectory`), against the
/// http test server, which counts the requests for each shard.
@Suite(.serialized) struct RemoteCacheTests {
    @Test func aFirstPassDownloadsEachShardOnceAndLaterDatasetsNeedNoServer() throws {
        let served = try ServedShards()
        let expected = try served.expected()
        let cache = try served.folder("cache")
        let before = try served.requests()
        let dataset = try served.remote(cache: cache)
        #expect(dataset.strategy == .remote)
        #expect(
            dataset.choice.reason
                == "remote: 3 shards are remote (object storage or a web server), cached whole in the cache folder '\(cache)' (limit \(formatBytes(16 << 30)), least recently used copies deleted first): each is downloaded once, with one GET sent with the ETag recorded at ingest (If-Match), then read from there with pread"
        )
        // Twice, in a scrambled order, and as a pass: still one GET a shard.
        let order = [5, 0, 11, 3, 7, 1, 10, 2, 9, 4, 8, 6]
        try expectSamples(dataset, expected, order: order)
        try expectSamples(dataset, expected, order: order.reversed())
        var passed = 0
        try dataset.forEachSample { view in
            #expect(view.copy().members == expected[view.position].members)
            passed += 1
        }
        #expect(passed == 12)
        let after = try served.requests()
        #expect(zip(after, before).map { $0 - $1 } == [1, 1, 1], "requests per shard: \(before) -> \(after)")
        // The folder holds one copy per shard, each the shard's exact bytes, named after it.
        let copies = try served.copies(in: cache)
        #expect(copies.count == 3, "\(copies.keys.sorted())")
        for name in served.names {
            let mine = copies.filter { $0.key.hasPrefix(name + "-") && $0.key.hasSuffix(".shardstore-cache.tar") }
            let bytes = try served.shardBytes(name)
            #expect(mine.count == 1 && mine.first?.value == bytes, "\(name)")
        }

        // Another dataset on the same folder sends no request; with the server gone, it still reads.
        let again = try served.remote(cache: cache)
        try expectSamples(again, expected, order: Array(0..<12))
        #expect(try served.requests() == after)
        served.server.stop()
        let offline = try served.remote(cache: cache)
        try expectSamples(offline, expected, order: order)
        // Without the folder the same reads need the server, which is gone.
        let uncached = try served.remote(cache: nil)
        #expect(throws: RemoteError.self) { try uncached[0] }
    }

    @Test func anObjectReplacedAfterIngestIsRefusedAndNeverCopied() throws {
        let served = try ServedShards()
        let cache = try served.folder("cache")
        // Same size, other bytes, a new modification time: the server's ETag changes.
        var bytes = try served.shardBytes("shard-1.tar")
        bytes[600] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: served.files + "/shard-1.tar"))
        let dataset = try served.remote(cache: cache)
        #expect(throws: Never.self) { try dataset[0] }  // shard-0 is as ingested
        let error = #expect(throws: ShardChangedError.self) { try dataset[4] }
        #expect(error?.path == "\(served.server.baseURL)/shard-1.tar")
        #expect(error?.detail.hasSuffix("the object was replaced") == true)
        #expect(try served.copies(in: cache).keys.filter { $0.hasPrefix("shard-1.tar-") }.isEmpty)
        // Ingested again, the new object gets a copy of its own, with its bytes.
        _ = try Ingest.run(index: served.remoteIndex, shards: ["\(served.server.baseURL)/shard-1.tar"])
        let fresh = try served.remote(cache: cache)
        let sample = try fresh[4]
        #expect(sample.key == SampleKey("s1-0"))
        let copies = try served.copies(in: cache).filter { $0.key.hasPrefix("shard-1.tar-") }
        #expect(copies.count == 1 && copies.first?.value == bytes)
    }

    @Test func aSmallLimitEvictsTheLeastRecentlyUsedCopies() throws {
        let served = try ServedShards()
        let expected = try served.expected()
        let cache = try served.folder("cache")
        // Room for two shards, not three.
        let limit = served.shardSize * 5 / 2
        func held() throws -> [String] { try served.copies(in: cache).keys.sorted().map { String($0.prefix(11)) } }
        let first = try served.remote(cache: cache, limit: limit)
        try expectSamples(first, expected, order: [0, 4])
        #expect(try held() == ["shard-0.tar", "shard-1.tar"])
        try expectSamples(first, expected, order: [8])
        // shard-0 was the least recently used: its copy made room for shard-2's.
        #expect(try held() == ["shard-1.tar", "shard-2.tar"])
        // A new dataset reads shard-0 again: downloaded again, evicting shard-1 (now the oldest).
        let before = try served.requests()
        let second = try served.remote(cache: cache, limit: limit)
        try expectSamples(second, expected, order: [1, 9])
        #expect(try held() == ["shard-0.tar", "shard-2.tar"])
        #expect(zip(try served.requests(), before).map { $0 - $1 } == [1, 0, 0])
        let total = try served.copies(in: cache).values.reduce(0) { $0 + Int64($1.count) }
        #expect(total <= limit)
    }

    @Test func aLimitSmallerThanAShardFallsBackToRangeRequests() throws {
        let served = try ServedShards()
        let expected = try served.expected()
        let cache = try served.folder("cache")
        let dataset = try served.remote(cache: cache, limit: served.shardSize / 2)
        #expect(
            dataset.choice.reason
                == "remote: 3 shards are remote (object storage or a web server): all are larger than the \(formatBytes(served.shardSize / 2)) limit of the cache folder '\(cache)', so each sample is one range request over its members, sent with the ETag recorded at ingest (If-Match)"
        )
        let before = try served.requests()
        try expectSamples(dataset, expected, order: [0, 1, 2, 3])
        // One range request a sample, none of them a download.
        #expect(zip(try served.requests(), before).map { $0 - $1 } == [4, 0, 0])
        #expect(try served.copies(in: cache).isEmpty)
    }

    @Test func aDatasetReopenedForAChildProcessReadsThroughTheFolder() throws {
        // What a forked child gets (reopenedAfterFork): new locks and no copies open or being
        // downloaded; it finds the parent's copy and downloads the rest itself.
        let served = try ServedShards()
        let expected = try served.expected()
        let cache = try served.folder("cache")
        let parent = try served.remote(cache: cache)
        try expectSamples(parent, expected, order: [0])
        let child = parent.reopenedAfterFork()
        try expectSamples(child, expected, order: [11, 5, 0])
        #expect(try served.copies(in: cache).count == 3)
    }
}

/// The cache folder with S3 (moto, signature checking on): signed downloads fill it, and objects
/// deleted afterwards are still read from it.
@Suite(.serialized, .motoServer) struct RemoteCacheS3Tests {
    @Test func signedDownloadsFillTheFolderAndDeletedObjectsAreStillReadFromIt() throws {
        let server = try Moto.current
        let directory = try TemporaryDirectory()
        var configuration = RemoteConfiguration(endpoint: server.ready["endpoint"] as? String, region: "us-east-1")
        configuration.signing = .credentials(
            AWSCredentials(
                accessKeyID: server.ready["access_key_id"] as! String,
                secretAccessKey: server.ready["secret_access_key"] as! String, sessionToken: nil))
        configuration.retry = RetryPolicy(maxAttempts: 1, initialDelay: 0.01, maxDelay: 0.01, totalSeconds: 1)
        try server.command(["op": "bucket", "bucket": "cached"])
        var locals: [String] = []
        for n in 0..<2 {
            var tar = TarWriter()
            for i in 0..<3 {
                tar.addFile("k\(n)\(i).bin", testBytes(5000 + i, seed: UInt64(40 + n * 3 + i)))
                tar.addFile("k\(n)\(i).cls", Array("\(i)".utf8))
            }
            tar.finish()
            let path = directory.path + "/shard-\(n).tar"
            try tar.write(to: path)
            locals.append(path)
            try server.command(["op": "put", "bucket": "cached", "key": "train/shard-\(n).tar", "file": path])
        }
        let localIndex = directory.path + "/local.sqlite"
        _ = try Ingest.run(index: localIndex, shards: locals)
        let local = try Dataset(index: localIndex)
        let expected = try (0..<local.count).map { try local[$0] }
        let index = directory.path + "/s3.sqlite"
        var ingest = IngestOptions()
        ingest.remote = configuration
        _ = try Ingest.run(index: index, shards: ["s3://cached/train/shard-{0..1}.tar"], options: ingest)
        let cache = directory.path + "/cache"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        func open(cached: Bool) throws -> Dataset {
            try Dataset(
                index: index, options: Dataset.Options(cacheDirectory: cached ? cache : nil, remote: configuration))
        }
        let first = try open(cached: true)
        #expect(first.choice.reason.contains("cached whole in the cache folder '\(cache)'"))
        try expectSamples(first, expected, order: [4, 0, 5, 1, 3, 2])
        let copies = try FileManager.default.contentsOfDirectory(atPath: cache).sorted()
        #expect(copies.map { String($0.prefix(12)) } == ["shard-0.tar-", "shard-1.tar-"])
        for (n, name) in copies.enumerated() {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: cache + "/" + name))
                    == Data(contentsOf: URL(fileURLWithPath: locals[n])))
        }
        for n in 0..<2 { try server.command(["op": "delete", "bucket": "cached", "key": "train/shard-\(n).tar"]) }
        try expectSamples(try open(cached: true), expected, order: Array(0..<6))
        let uncached = try open(cached: false)
        let error = #expect(throws: RemoteError.self) { try uncached[0] }
        #expect(error.map { "\($0)".contains("s3://cached/train/shard-0.tar") } == true)
    }
}

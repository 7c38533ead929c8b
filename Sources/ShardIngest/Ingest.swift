import Dispatch
import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardLoader
import ShardRemote
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How an ingest runs.
public struct IngestOptions: Sendable {
    /// Assign every sample of the named shards to this split.
    public var split: String?
    /// What to do with a repeated (key, extension).
    public var onDuplicate: DuplicatePolicy
    /// Shards scanned at once (default: the number of cores).
    public var jobs: Int
    /// Read every scanned shard whole and record each member's CRC-32C (for `shardstore verify
    /// --data`); unchanged shards indexed without checksums are read for theirs too. Off by
    /// default: ingest then reads only the tar headers.
    public var checksums: Bool
    /// For compressed shards: about how many uncompressed bytes lie between two gzip seek points
    /// (1 MiB by default; 64 KiB to 1 GiB). A random read decompresses half of it on average, and
    /// each point stores a window of up to 32 KiB (compressed), so smaller spans read faster and
    /// store more.
    public var seekSpan: Int64
    /// Called from the ingesting thread after each shard.
    public var progress: (@Sendable (IngestProgress) -> Void)?
    /// Polled between shards and every few thousand headers; when it returns true the ingest stops
    /// with ``IngestError/cancelled`` and changes nothing.
    public var isCancelled: @Sendable () -> Bool
    /// How remote shards (`s3://`, `http(s)://` arguments) are reached; nil resolves it from the
    /// environment and the AWS files when an argument is remote (`RemoteConfiguration.resolve()`).
    public var remote: RemoteConfiguration?

    public init(
        split: String? = nil, onDuplicate: DuplicatePolicy = .error, jobs: Int = defaultJobs, checksums: Bool = false,
        seekSpan: Int64 = SeekTable.defaultSpan, progress: (@Sendable (IngestProgress) -> Void)? = nil,
        isCancelled: @escaping @Sendable () -> Bool = { false }, remote: RemoteConfiguration? = nil
    ) {
        self.split = split
        self.checksums = checksums
        self.seekSpan = min(max(seekSpan, Self.seekSpanRange.lowerBound), Self.seekSpanRange.upperBound)
        self.onDuplicate = onDuplicate
        self.jobs = max(1, jobs)
        self.progress = progress
        self.isCancelled = isCancelled
        self.remote = remote
    }

    /// The seek spans accepted: 64 KiB to 1 GiB (others are clamped to this range).
    public static let seekSpanRange: ClosedRange<Int64> = (64 << 10)...(1 << 30)

    /// The number of online cores.
    public static var defaultJobs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// Where an ingest is.
public struct IngestProgress: Sendable {
    /// Shards finished (scanned and written, or skipped as unchanged).
    public var shardsDone: Int
    /// Shards in the command.
    public var shardsTotal: Int
    /// Samples added or updated so far.
    public var samples: Int
    /// Bytes of the shards finished so far.
    public var bytes: Int64
    /// Seconds since the ingest started.
    public var seconds: Double
}

/// What an ingest did.
public struct IngestReport: Sendable {
    /// Shards new to the index.
    public var added: [String] = []
    /// Shards whose size or mtime changed: scanned again, their members replaced.
    public var changed: [String] = []
    /// Shards already indexed with the same size and mtime: skipped.
    public var unchanged: [String] = []
    /// Unchanged shards indexed without checksums whose members' checksums were computed and
    /// recorded now (`--checksums`); also listed in ``unchanged``.
    public var checksumsAdded: [String] = []
    /// Shards read whole for checksums (scanned ones and ``checksumsAdded``) and their bytes.
    public var bytesChecksummed: Int64 = 0
    /// Members written.
    public var members = 0
    /// Sample rows created.
    public var newSamples = 0
    /// Samples removed because their members vanished from re-indexed shards.
    public var removedSamples = 0
    /// Samples in the index afterwards.
    public var totalSamples = 0
    /// Entries that are not members, by reason.
    public var skipped = SkipCounts()
    /// Repeated (key, extension) left out under `first`.
    public var duplicatesDropped = 0
    /// Repeated (key, extension) that replaced an earlier one under `last`.
    public var duplicatesReplaced = 0
    /// Extra samples created for repeated (key, extension) under `keep`.
    public var duplicatesKept = 0
    /// Members whose key had been seen before, but not just before them (the key came back after
    /// other keys, in the same shard or another one); they were grouped into the earlier sample.
    public var keysSeenAgain = 0
    /// Up to five examples of keys seen again: the key, where it came back, where it was first.
    public var keysSeenAgainExamples:
        [(key: SampleKey, path: String, offset: Int64, firstPath: String, firstOffset: Int64)] = []
    /// The split assignment made with `--split`.
    public var splitAssignment: IndexWriter.SplitAssignment?
    /// Shard bytes scanned.
    public var bytesScanned: Int64 = 0
    /// Whether the index file was created by this ingest.
    public var createdIndex = false
    /// Wall time in seconds.
    public var seconds = 0.0
    /// Wall time of each phase, in order: (name, seconds).
    public var phases: [(name: String, seconds: Double)] = []
    /// Seconds the writer spent waiting for scans (when large, scanning is the bottleneck).
    public var waitingForScans = 0.0
    /// Whether the index could not be written (a read-only file, folder or file system) and did
    /// not need to be: every shard was unchanged and no split was asked for, so the ingest only
    /// read it.
    public var indexWasReadOnly = false
    /// Partial index files left by killed ingests and removed now.
    public var removedPartials: [String] = []
    /// The location file written or found up to date beside the index (see `LocationFile`).
    public var locationFile: LocationFile.Written?
    /// Why the location file could not be written (the index itself is complete; readers then
    /// build their location table at open).
    public var locationFileError: String?

    public init() {}
}

/// Ingests tar shards into an index: stat, compare with the index, scan changed and new shards'
/// headers (in parallel), and write everything in one transaction.
///
/// A new index is built under a temporary name and published with an atomic link, so it either
/// does not exist or is complete; an existing index is updated in one SQLite transaction, so a
/// failure, Ctrl-C or `kill -9` leaves it as it was.
///
/// ```swift
/// let report = try Ingest.run(index: "ds/index.sqlite", shards: ["ds/train-{000..009}.tar"])
/// print(report.totalSamples)
/// ```
public enum Ingest {
    /// Runs an ingest.
    ///
    /// - Parameters:
    ///   - indexPath: the index file (created when missing).
    ///   - shards: shard paths, globs or brace patterns (see `ShardPatterns`).
    /// - Throws: ``IngestError``, `IOError`, `SQLiteError`, `SchemaError`; the index is unchanged.
    /// - Complexity: O(members) header reads and inserts; unchanged shards cost one `stat`.
    public static func run(index indexPath: String, shards patterns: [String], options: IngestOptions = IngestOptions())
        throws -> IngestReport
    {
        let clock = ContinuousClock()
        let start = clock.now
        func elapsed() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        var phaseStart = 0.0
        var phases: [(name: String, seconds: Double)] = []
        func phase(_ name: String) {
            let now = elapsed()
            phases.append((name, now - phaseStart))
            phaseStart = now
        }
        try IndexFile.checkNotDirectory(indexPath)
        // Local arguments expand against the file system; remote ones (s3://, http(s)://) against
        // their bucket or server, through one client. Shards keep the arguments' order.
        var remoteClient: RemoteClient?
        var expanded: [(path: String, remote: RemoteObjectInfo?)] = []
        for argument in patterns {
            if RemoteLocation.hasRemoteScheme(argument) {
                if remoteClient == nil {
                    var configuration = options.remote
                    if configuration == nil {
                        do { configuration = try RemoteConfiguration.resolve() } catch {
                            throw IngestError.remoteFailed(error)
                        }
                    }
                    remoteClient = RemoteClient(configuration: configuration!)
                }
                for info in try RemoteShardList.expand([argument], client: remoteClient!) {
                    expanded.append((info.location.description, info))
                }
            } else {
                for path in try ShardPatterns.expand([argument]) { expanded.append((path, nil)) }
            }
        }
        guard !expanded.isEmpty else { throw IngestError.noShards }

        let indexFolder = Paths.directory(of: Paths.absolute(indexPath))
        let indexDirectory: String
        do { indexDirectory = try Paths.real(indexFolder) } catch {
            throw IngestError.indexFolderMissing(indexFolder)
        }
        var report = IngestReport()
        report.removedPartials = IndexFile.removeStalePartials(for: indexPath)
        // Temporary location files of killed processes go silently: they are only a cache.
        IndexFile.removeStalePartials(for: LocationFile.path(forIndex: indexPath))

        // Stat every shard first: a missing or non-regular one fails before anything is written.
        struct Planned: Sendable {
            var openPath: String
            var storedPath: String
            var status: FileStatus
            /// A remote shard's object (its location, size, ETag); nil for a local file.
            var remote: RemoteObjectInfo?
        }
        var planned: [Planned] = []
        var seenStored = Set<String>()
        for (file, remote) in expanded {
            if let remote {
                // Stored as located: never relative. Last-Modified stands for the mtime.
                let status = FileStatus(
                    size: remote.size, modificationTimeNanoseconds: (remote.lastModified ?? 0) &* 1_000_000_000,
                    isRegularFile: true)
                if seenStored.insert(file).inserted {
                    planned.append(Planned(openPath: file, storedPath: file, status: status, remote: remote))
                }
                continue
            }
            let canonical = try Paths.canonicalFile(file)
            let status: FileStatus
            do { status = try FileStatus.of(canonical) } catch { throw IngestError.unreadableShard(error) }
            guard status.isRegularFile else {
                throw IngestError.unreadableShard(
                    IOError(
                        "ingest", path: file, errno: 0,
                        detail: status.isDirectory ? "a directory, not a tar file" : "not a regular file"))
            }
            let stored = Paths.storedShardPath(canonical, indexDirectory: indexDirectory)
            if seenStored.insert(stored).inserted {
                planned.append(Planned(openPath: canonical, storedPath: stored, status: status))
            }
        }

        phase("stat")
        // Open the index: an existing one in place, a new one under a temporary name (also for an
        // existing 0-byte file, which the new index replaces: a failed ingest leaves it as it was).
        let replacingEmptyFile = IndexFile.isEmptyFile(indexPath)
        let creating = replacingEmptyFile || !IndexFile.exists(indexPath)
        if !creating, !IndexFile.isWritable(indexPath) {
            // Nothing may be written: succeed only when nothing has to be.
            try checkNothingToWrite(
                index: indexPath, shards: planned.map { ($0.storedPath, $0.status) }, options: options,
                report: &report)
            phase("read")
            do { report.locationFile = try LocationFile.ensure(index: indexPath) } catch {
                report.locationFileError = "\(error)"
            }
            phase("locations")
            report.phases = phases
            report.seconds = elapsed()
            return report
        }
        // A new index is built in a file created for it (O_EXCL, O_NOFOLLOW), which SQLite then
        // opens without following symbolic links.
        let partial = creating ? try IndexFile.createPartial(for: indexPath) : nil
        var published = false
        defer { if let partial, !published { IndexFile.discard(partial) } }

        let db = try Database(
            path: partial?.temporaryPath ?? indexPath, mode: .readWrite, followingSymlinks: partial == nil)
        // A new file takes no journal and no syncs from its first statement on, migrations
        // included: a failure discards it whole.
        if creating { try IndexWriter.configureForNewFile(db) }
        try IndexFile.migrator.migrate(db)
        let writer = try IndexWriter(database: db)
        if creating {
            try writer.dropKeyIndex()
        } else {
            try writer.configureForUpdate()
        }

        phase("open")
        try db.inTransaction(.immediate) {
            let existing = try writer.shardsByPath()
            var toScan: [(planned: Planned, record: ShardRecord)] = []
            var nextShardID = try writer.nextShardID()
            var commandShardIDs: [Int64] = []
            var unchangedBytes: Int64 = 0
            // Unchanged shards whose checksums are missing, when they are asked for.
            let withoutChecksums = options.checksums ? try writer.shardIDsWithoutChecksums() : []
            var toChecksum: [(planned: Planned, record: ShardRecord)] = []
            for p in planned {
                if let old = existing[p.storedPath] {
                    commandShardIDs.append(old.id)
                    // A remote object is unchanged when its size and ETag are (its Last-Modified
                    // then too); a local file, or an object without an ETag, by size and mtime.
                    let sameContents =
                        if let etag = p.remote?.etag {
                            old.size == p.status.size && old.etag == etag
                        } else {
                            old.size == p.status.size
                                && old.modificationTimeNanoseconds == p.status.modificationTimeNanoseconds
                        }
                    // Checksums missing from a remote shard: it is read again whole (one GET).
                    if sameContents, p.remote == nil || !withoutChecksums.contains(old.id) {
                        report.unchanged.append(p.storedPath)
                        if withoutChecksums.contains(old.id) {
                            toChecksum.append((p, old))
                        } else {
                            unchangedBytes += p.status.size
                        }
                        continue
                    }
                    report.changed.append(p.storedPath)
                    toScan.append((p, old))
                } else {
                    report.added.append(p.storedPath)
                    let record = ShardRecord(
                        id: nextShardID, path: p.storedPath, size: p.status.size,
                        modificationTimeNanoseconds: p.status.modificationTimeNanoseconds, memberCount: 0,
                        skippedCount: 0)
                    commandShardIDs.append(nextShardID)
                    nextShardID += 1
                    toScan.append((p, record))
                }
            }
            // Members of changed shards go first, so their keys regroup as if scanned fresh.
            for (_, record) in toScan where existing[record.path] != nil {
                try writer.deleteMembers(ofShard: record.id)
            }

            var shardPaths: [Int64: String] = [:]
            for s in existing.values { shardPaths[s.id] = s.path }
            for (_, r) in toScan { shardPaths[r.id] = r.path }
            var grouper = SampleGrouper(
                writer: writer, policy: options.onDuplicate, indexWasEmpty: try writer.isEmpty(),
                nextID: try writer.nextSampleID(), shardPaths: shardPaths)

            var done = report.unchanged.count - toChecksum.count
            var bytesDone = unchangedBytes
            options.progress?(
                IngestProgress(
                    shardsDone: done, shardsTotal: planned.count, samples: 0, bytes: bytesDone, seconds: elapsed()))

            let scanList = toScan.map(\.planned)
            let isCancelled = options.isCancelled
            let client = remoteClient
            report.waitingForScans = try ParallelScan.run(
                count: toScan.count, jobs: options.jobs, isCancelled: isCancelled,
                scan: {
                    [checksums = options.checksums, span = options.seekSpan] (i: Int) throws(IngestError) -> ShardScan
                    in
                    if let remote = scanList[i].remote {
                        return try ShardScanner.scan(
                            remote: remote, client: client!, checksums: checksums, seekSpan: span,
                            isCancelled: isCancelled)
                    }
                    return try ShardScanner.scan(
                        path: scanList[i].openPath, displayPath: scanList[i].storedPath, checksums: checksums,
                        seekSpan: span, isCancelled: isCancelled)
                },
                consume: { i, scan in
                    var record = toScan[i].record
                    record.size = toScan[i].planned.status.size
                    record.modificationTimeNanoseconds = toScan[i].planned.status.modificationTimeNanoseconds
                    record.etag = scan.remote?.etag
                    record.lastModified = scan.remote?.lastModifiedText
                    let written = try grouper.add(scan, shardID: record.id)
                    record.memberCount = written
                    record.skippedCount = scan.skipped.total
                    record.compression = scan.compression?.format.name ?? "none"
                    record.uncompressedSize = scan.compression?.uncompressedSize
                    try writer.saveShard(record)
                    try writer.saveSeekTable(
                        scan.compression.map {
                            StoredSeekTable(
                                shardID: record.id, pointCount: $0.seekTable.isSeekable ? $0.seekTable.pointCount : 0,
                                data: $0.seekTable.serialized())
                        }, forShard: record.id)
                    try writer.setChecksumsRecorded(options.checksums, forShard: record.id)
                    if options.checksums { report.bytesChecksummed += record.size }
                    report.skipped += scan.skipped
                    report.members += written
                    report.bytesScanned += record.size
                    done += 1
                    bytesDone += record.size
                    options.progress?(
                        IngestProgress(
                            shardsDone: done, shardsTotal: planned.count, samples: grouper.samplesTouched,
                            bytes: bytesDone, seconds: elapsed()))
                })
            if options.isCancelled() { throw IngestError.cancelled }
            phase("scan and write")

            // Checksums of unchanged shards indexed without them: their member rows are read a
            // window of shards at a time, so memory stays bounded however many shards there are.
            let window = 2 * options.jobs + 2
            for chunkStart in stride(from: 0, to: toChecksum.count, by: window) {
                let chunk = Array(toChecksum[chunkStart..<min(chunkStart + window, toChecksum.count)])
                let targets = try chunk.map { try writer.members(ofShard: $0.record.id) }
                let chunkList = chunk.map(\.planned)
                report.waitingForScans += try ParallelScan.run(
                    count: chunk.count, jobs: options.jobs, isCancelled: isCancelled,
                    scan: { [indexPath] (i: Int) throws(IngestError) -> [UInt32] in
                        try ShardScanner.checksumIndexed(
                            path: chunkList[i].openPath, displayPath: chunkList[i].storedPath,
                            indexPath: indexPath, members: targets[i], isCancelled: isCancelled)
                    },
                    consume: { i, checksums in
                        for (member, crc) in zip(targets[i], checksums) {
                            try writer.setChecksum(crc, sampleID: member.sampleID, ext: member.ext)
                        }
                        try writer.setChecksumsRecorded(true, forShard: chunk[i].record.id)
                        report.checksumsAdded.append(chunk[i].record.path)
                        report.bytesChecksummed += chunk[i].planned.status.size
                        done += 1
                        bytesDone += chunk[i].planned.status.size
                        options.progress?(
                            IngestProgress(
                                shardsDone: done, shardsTotal: planned.count, samples: grouper.samplesTouched,
                                bytes: bytesDone, seconds: elapsed()))
                    })
                if options.isCancelled() { throw IngestError.cancelled }
            }
            if !toChecksum.isEmpty { phase("checksums") }

            if creating { try writer.createKeyIndex() }
            if !report.changed.isEmpty { report.removedSamples = try writer.removeEmptySamples() }
            if !report.changed.isEmpty || grouper.relocated > 0 { try writer.renumber() }
            // Replacements move members between shards: recount every shard's members.
            if grouper.relocated > 0 { try writer.recountShardMembers() }
            if let split = options.split {
                let ids = try writer.sampleIDs(inShards: commandShardIDs)
                report.splitAssignment = try writer.assign(
                    split: split, sampleIDs: ids,
                    step: "{\"by\":\"ingest\",\"shards\":\(planned.count)}")
            }
            try writer.setMetadata(
                IndexWriter.reservedMetadataPrefix + "version", json: JSON.quote(ShardStoreVersion.string))
            // A new content id whenever samples or members may have changed, so files derived from
            // the index (the location file) know they are out of date.
            if creating || !toScan.isEmpty || !report.changed.isEmpty
                || (try? LocationFile.contentID(of: db)) == nil
            {
                try writer.setMetadata(IndexFile.contentIDKey, json: JSON.quote(IndexFile.newContentID()))
            }
            report.newSamples = grouper.created
            report.duplicatesDropped = grouper.dropped
            report.duplicatesReplaced = grouper.replaced
            report.duplicatesKept = grouper.keptExtra
            report.keysSeenAgain = grouper.seenAgain
            report.keysSeenAgainExamples = grouper.seenAgainExamples
            report.totalSamples = Int(try writer.nextSampleID())
            phase("finish")
        }
        phase("commit")
        if creating {
            try writer.finishNewFile()
            db.close()
            if let partial { try IndexFile.publish(partial, replacingEmptyFile: replacingEmptyFile) }
            published = true
            report.createdIndex = true
            phase("publish")
        }
        // The location file beside the index (a derived cache: a failure here leaves the index
        // complete, and readers build their table instead).
        do {
            report.locationFile = try LocationFile.ensure(index: indexPath)
        } catch {
            report.locationFileError = "\(error)"
        }
        phase("locations")
        report.phases = phases
        report.seconds = elapsed()
        return report
    }
}

extension Ingest {
    /// For an index this process cannot write: fills `report` when the ingest has nothing to
    /// write (every shard indexed with the same size and mtime, no split to assign), reading the
    /// index only.
    ///
    /// - Throws: ``IngestError/readOnlyIndex(path:changedShards:split:)`` when a shard is new or
    ///   changed or a split is asked for; `IndexError`, `SchemaError`, `SQLiteError` reading the
    ///   index.
    static func checkNothingToWrite(
        index indexPath: String, shards: [(stored: String, status: FileStatus)], options: IngestOptions,
        report: inout IngestReport
    ) throws {
        let reader = try IndexReader(path: indexPath)
        var existing: [String: ShardRecord] = [:]
        for s in try reader.shards() { existing[s.path] = s }
        let changed = shards.filter { s in
            guard let old = existing[s.stored] else { return true }
            return old.size != s.status.size || old.modificationTimeNanoseconds != s.status.modificationTimeNanoseconds
        }
        guard changed.isEmpty, options.split == nil else {
            throw IngestError.readOnlyIndex(path: indexPath, changedShards: changed.count, split: options.split)
        }
        report.unchanged = shards.map(\.stored)
        report.totalSamples = try reader.sampleCount()
        report.indexWasReadOnly = true
    }
}

/// Scans shards on `jobs` threads, at most `2 * jobs + 2` ahead of the consumer, and hands the
/// results to `consume` in order on the calling thread.
enum ParallelScan {
    static func run<Output: Sendable>(
        count: Int, jobs: Int, isCancelled: @escaping @Sendable () -> Bool,
        scan: @escaping @Sendable (Int) throws(IngestError) -> Output,
        consume: (Int, Output) throws -> Void
    ) throws -> Double {
        var waited = 0.0
        let clock = ContinuousClock()
        guard count > 0 else { return 0 }
        let window = 2 * jobs + 2
        let state = Mutex(State<Output>(count: count))
        let ready = (0..<count).map { _ in DispatchSemaphore(value: 0) }
        // Starts at 0 and is signalled up to the window: libdispatch traps when a semaphore is
        // released holding less than its initial value, which an early error would cause.
        let permits = DispatchSemaphore(value: 0)
        for _ in 0..<window { permits.signal() }
        let group = DispatchGroup()
        let workers = min(jobs, count)
        for _ in 0..<workers {
            DispatchQueue.global().async(group: group) {
                while true {
                    permits.wait()
                    let i: Int? = state.withLock { s in
                        guard !s.stopped, s.next < count else { return nil }
                        defer { s.next += 1 }
                        return s.next
                    }
                    guard let i else {
                        permits.signal()
                        return
                    }
                    let result: Result<Output, IngestError>
                    if isCancelled() {
                        result = .failure(.cancelled)
                    } else {
                        do throws(IngestError) { result = .success(try scan(i)) } catch { result = .failure(error) }
                    }
                    state.withLock { $0.results[i] = result }
                    ready[i].signal()
                }
            }
        }
        defer {
            state.withLock { $0.stopped = true }
            for _ in 0..<workers { permits.signal() }
            group.wait()
        }
        for i in 0..<count {
            let t0 = clock.now
            ready[i].wait()
            let d = clock.now - t0
            waited += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
            let result = state.withLock { s in
                defer { s.results[i] = nil }
                return s.results[i]!
            }
            try consume(i, try result.get())
            permits.signal()
        }
        return waited
    }

    struct State<Output>: ~Copyable {
        var next = 0
        var stopped = false
        var results: [Result<Output, IngestError>?]
        init(count: Int) { results = Array(repeating: nil, count: count) }
    }
}

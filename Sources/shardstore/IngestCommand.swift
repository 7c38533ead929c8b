import ArgumentParser
import ShardStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension DuplicatePolicy: ExpressibleByArgument {}

/// Set by the first Ctrl-C (SIGINT), SIGTERM or SIGHUP; the ingest or export polls it and
/// rolls back.
let interruptRequested = Atomic<Bool>(false)

/// The signal that set ``interruptRequested`` (0 before one arrives).
let interruptSignal = Atomic<Int32>(0)

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Index tar shards: add new shards, re-index changed ones, skip unchanged ones.",
        discussion: """
            Scans only the tar headers (never member data) and writes the whole ingest as one transaction: if anything fails, or you press Ctrl-C, the index stays as it was. A new index is built under a temporary name and appears only when complete.

            SHARD arguments are paths, shell globs ('data/*.tar') or brace patterns ('train-{000000..000099}.tar', '{a,b}.tar'); quote them so the tool expands them. Shards below the index file's folder are stored with relative paths, so the folder can be moved.

            Members are grouped into samples by key (webdataset's rule: the name up to the first '.' of its basename), adjacent or not. A repeated key and extension is handled by --on-duplicate:
              error  stop, naming both locations (default)
              first  keep the first copy, leave out later ones
              last   keep the last copy
              keep   keep every copy as its own sample (lookups by that key
                     then list the candidates)

            Compressed shards (.tar.gz/.tgz, .tar.zst, .tar.xz, .tar.bz2; recognised by their first bytes, not their names) are indexed as they are, in one streaming pass each: members are recorded at their offsets in the uncompressed tar. For gzip, ingest also saves a seek point about every --seek-span of uncompressed bytes (default 1M), so a random read decompresses from the nearest point instead of the file's start; zstd with several frames and xz with several blocks are entered at a frame or block. A single-frame .tar.zst, a single-block .tar.xz and a .tar.bz2 can only be read front to back: readers decompress them whole (`shardstore info --strategy` says how). To make them seekable, compress with `pzstd` (independent frames), `xz --block-size=4MiB` or `xz -T0` (several blocks), or gzip.

            Remote shards: s3://bucket/key (S3 and S3-compatible storage, requests signed with SigV4 from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws as the AWS tools read them; --endpoint for MinIO, Ceph, R2...; --no-sign-request for public buckets) and http(s):// URLs. A wildcard in an s3:// key lists the bucket under the prefix before it ('s3://data/train/shard-*.tar'); brace ranges need no listing and are the way to name shards on a web server. Each remote shard is read once, as a stream, never stored locally; the index records its URL, size, ETag and Last-Modified, and a later ingest skips objects whose ETag and size are unchanged. Reads then send one range request per sample with the recorded ETag (If-Match): an object replaced since ingest is refused, never read.

            With --checksums, ingest also reads every new or changed shard whole (sequentially, in large reads) and records the CRC-32C of each member, which `shardstore verify --data` compares. Unchanged shards keep the checksums they have; unchanged shards indexed without checksums are read for theirs (after checking each member's header against the index). Without --checksums only the headers are read, and re-indexed shards lose their checksums.

            Examples:
              shardstore ingest ds/index.sqlite 'ds/shard-*.tar'
              shardstore ingest ds/index.sqlite 'ds/val-{0000..0009}.tar' --split val
              shardstore ingest ds/index.sqlite 's3://bucket/train/shard-{0000..0099}.tar'
              shardstore ingest ds/index.sqlite 's3://bucket/val-*.tar' --no-sign-request
              shardstore ingest --checksums ds/index.sqlite 'ds/shard-*.tar'
              shardstore ingest ds/index.sqlite 'ds/shard-{000000..000099}.tar.gz' --seek-span 512K
            """)

    @Argument(help: "The index file (created when missing).")
    var index: String

    @Argument(help: "Shard paths, globs or brace patterns; s3://bucket/key and http(s):// URLs too.")
    var shards: [String]

    @Option(help: "Assign the samples of these shards to split NAME.")
    var split: String?

    @Option(
        name: .customLong("on-duplicate"),
        help: "What to do with a repeated key and extension: error, first, last or keep.")
    var onDuplicate: DuplicatePolicy = .error

    @Option(help: "Shards scanned in parallel, 1 to 1024 (default: the number of cores).")
    var jobs: Int?

    @Flag(help: "Read the shards whole and record each member's CRC-32C (for `shardstore verify --data`).")
    var checksums = false

    @Option(
        help: ArgumentHelp(
            "For gzip shards: uncompressed bytes between seek points, 64K to 1G (default 1M).", valueName: "size"))
    var seekSpan: String?

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @OptionGroup(title: "Remote shards") var remote: RemoteOptions

    @Flag(help: "Also print the time each phase took.")
    var verbose = false

    func validate() throws {
        if shards.isEmpty { throw ValidationError("Please name at least one shard, glob or brace pattern.") }
        if let jobs, jobs < 1 { throw ValidationError("Please give --jobs a number of at least 1.") }
        if let jobs, jobs > CLILimits.maxThreads {
            throw ValidationError("Please give --jobs at most \(CLILimits.maxThreads), got \(jobs).")
        }
        if let split, split.isEmpty { throw ValidationError("Please give --split a non-empty name.") }
        if let seekSpan {
            let bytes = try Self.seekSpanBytes(seekSpan)
            guard IngestOptions.seekSpanRange.contains(bytes) else {
                throw ValidationError("Please give --seek-span from 64K to 1G, got \(seekSpan).")
            }
        }
    }

    /// `--seek-span`'s bytes (`1M`, `256K`, `65536`).
    static func seekSpanBytes(_ text: String) throws -> Int64 {
        do { return try MemoryProbe.parseSize(text) } catch {
            throw ValidationError("Please give --seek-span a size such as 256K or 4M, got \(text).")
        }
    }

    func run() throws {
        installInterruptHandlers()
        let showProgress = !quiet && Terminal.stderrIsTerminal
        let options = IngestOptions(
            split: split, onDuplicate: onDuplicate, jobs: jobs ?? IngestOptions.defaultJobs, checksums: checksums,
            seekSpan: try seekSpan.map(Self.seekSpanBytes) ?? SeekTable.defaultSpan,
            progress: showProgress ? Self.progressRenderer() : nil,
            isCancelled: { interruptRequested.load(ordering: .relaxed) }, remote: try remote.configuration())
        let existed = IndexFile.exists(index)
        let unchanged = existed ? "the index was not changed" : "no index was created"
        let report: IngestReport
        do {
            report = try Ingest.run(index: index, shards: shards, options: options)
        } catch IngestError.cancelled {
            Terminal.error("ingest interrupted; \(unchanged)")
            throw ExitCode(130)
        } catch IndexError.indexIsDirectory(let path) {
            Terminal.error(String(describing: IndexError.indexIsDirectory(path: path)))
            throw ExitCode(1)
        } catch {
            Terminal.error(Terminal.message(for: error) + " (\(unchanged))")
            throw ExitCode(1)
        }
        Terminal.clearProgress()
        if json {
            Terminal.line(Self.json(report, index: index))
        } else if !quiet {
            Terminal.line(Self.summary(report, index: index))
        }
        // The summary goes out before the notes and timings: where stdout and stderr reach one
        // terminal or file, each stays on its own line, in order.
        try Terminal.flush()
        if !quiet { Self.notes(report) }
        if verbose {
            let phases = report.phases.map { "\($0.name) \(Format.fixed($0.seconds, 3)) s" }.joined(separator: ", ")
            Terminal.stderrLine(
                "phases: \(phases); the writer waited \(Format.fixed(report.waitingForScans, 3)) s for scans")
        }
        try Terminal.flush()
    }

    /// Draws progress at most ten times a second (and once at the end).
    static func progressRenderer() -> @Sendable (IngestProgress) -> Void {
        let throttle = ProgressThrottle()
        return { p in
            guard throttle.shouldDraw(at: p.seconds, final: p.shardsDone == p.shardsTotal) else { return }
            let rate = p.seconds > 0 ? Double(p.bytes) / 1e6 / p.seconds : 0
            Terminal.progress(
                "ingest: \(p.shardsDone)/\(p.shardsTotal) shards, \(Format.count(p.samples)) samples, \(Format.fixed(rate, 0)) MB/s"
            )
        }
    }

    static func summary(_ r: IngestReport, index: String) -> String {
        let shards = r.added.count + r.changed.count + r.unchanged.count
        var s =
            "ingested \(shards) shard\(shards == 1 ? "" : "s") (\(r.added.count) new, \(r.changed.count) changed, \(r.unchanged.count) unchanged)"
        s += ": \(Format.count(r.totalSamples, "sample")) in the index (\(Format.count(r.newSamples)) new"
        if r.removedSamples > 0 { s += ", \(Format.count(r.removedSamples)) removed" }
        s += "), \(Format.count(r.members, "member")) from \(Format.bytes(r.bytesScanned)) scanned"
        s += " in \(Format.fixed(r.seconds, 2)) s"
        if r.seconds > 0, r.bytesScanned > 0 {
            s += " (\(Format.fixed(Double(r.bytesScanned) / 1e6 / r.seconds, 0)) MB/s)"
        }
        if let a = r.splitAssignment { s += "; split '\(a.split)' has \(Format.count(a.total, "sample"))" }
        s += " -> \(index)"
        return s
    }

    /// Notes on stderr for everything that was not simply indexed: skipped entries, duplicates,
    /// keys seen again, moved split members.
    static func notes(_ r: IngestReport) {
        if r.skipped.total > 0 {
            let parts = r.skipped.nonZero.joined(separator: ", ")
            Terminal.stderrLine(
                "note: skipped \(Format.count(r.skipped.total)) tar \(r.skipped.total == 1 ? "entry that is not a sample member" : "entries that are not sample members"): \(parts)"
            )
        }
        if r.duplicatesDropped > 0 {
            Terminal.stderrLine(
                "note: --on-duplicate first: left out \(Format.count(r.duplicatesDropped, "repeated member")) (the first copy of each was kept)"
            )
        }
        if r.duplicatesReplaced > 0 {
            Terminal.stderrLine(
                "note: --on-duplicate last: \(Format.count(r.duplicatesReplaced, "repeated member")) replaced earlier copies"
            )
        }
        if r.duplicatesKept > 0 {
            Terminal.stderrLine(
                "note: --on-duplicate keep: \(Format.count(r.duplicatesKept, "repeated member")) became extra samples with the same key; look those keys up by index"
            )
        }
        if r.keysSeenAgain > 0 {
            let examples = r.keysSeenAgainExamples.map {
                "'\(MessageText.escaped($0.key))' at \($0.path) offset \($0.offset) (first at \($0.firstPath) offset \($0.firstOffset))"
            }.joined(separator: "; ")
            Terminal.stderrLine(
                "note: \(Format.count(r.keysSeenAgain, "member")) had a key seen earlier but not just before them; they were grouped with it: \(examples)"
            )
        }
        if let a = r.splitAssignment, !a.movedFrom.isEmpty {
            let moved = a.movedFrom.sorted { $0.key < $1.key }.map {
                "\(Format.count($0.value)) from '\(MessageText.escaped($0.key))'"
            }
            .joined(separator: ", ")
            Terminal.stderrLine("note: split '\(MessageText.escaped(a.split))': moved \(moved)")
        }
        if r.indexWasReadOnly {
            Terminal.stderrLine(
                "note: nothing changed (every shard is as indexed), so the read-only index was not written")
        }
        if !r.checksumsAdded.isEmpty {
            Terminal.stderrLine(
                "note: --checksums: read \(Format.count(r.checksumsAdded.count, "unchanged shard")) indexed without checksums and recorded theirs"
            )
        }
        for p in r.removedPartials {
            Terminal.stderrLine("note: removed '\(p)', an unfinished index left by an interrupted ingest")
        }
        if let e = r.locationFileError {
            Terminal.stderrLine(
                "warning: the location file was not written (\(e)); the index is complete, and datasets write it at open or do without it"
            )
        }
    }

    static func json(_ r: IngestReport, index: String) -> String {
        var o = JSONObject()
        o.add("index", string: index)
        o.add("created", bool: r.createdIndex)
        if let f = r.locationFile {
            o.add("location_file", string: f.path)
            o.add("location_file_bytes", int: f.bytes)
        }
        o.add("shards_added", JSONObject.array(r.added.map(JSON.quote)))
        o.add("shards_changed", JSONObject.array(r.changed.map(JSON.quote)))
        o.add("shards_unchanged", JSONObject.array(r.unchanged.map(JSON.quote)))
        o.add("samples", int: r.totalSamples)
        o.add("samples_new", int: r.newSamples)
        o.add("samples_removed", int: r.removedSamples)
        o.add("members", int: r.members)
        var skipped = JSONObject()
        skipped.add("directories", int: r.skipped.directories)
        skipped.add("symlinks", int: r.skipped.symlinks)
        skipped.add("hard_links", int: r.skipped.hardLinks)
        skipped.add("other_types", int: r.skipped.otherTypes)
        skipped.add("sparse", int: r.skipped.sparse)
        skipped.add("metadata_names", int: r.skipped.metadataNames)
        skipped.add("no_extension", int: r.skipped.noExtension)
        o.add("skipped", skipped.text)
        var dup = JSONObject()
        dup.add("dropped_first", int: r.duplicatesDropped)
        dup.add("replaced_last", int: r.duplicatesReplaced)
        dup.add("kept_as_samples", int: r.duplicatesKept)
        o.add("duplicates", dup.text)
        o.add("keys_seen_again", int: r.keysSeenAgain)
        if let a = r.splitAssignment {
            var s = JSONObject()
            s.add("name", string: a.split)
            s.add("added", int: a.added)
            s.add("total", int: a.total)
            o.add("split", s.text)
        } else {
            o.add("split", "null")
        }
        o.add("bytes_scanned", int: r.bytesScanned)
        o.add("checksums_added", JSONObject.array(r.checksumsAdded.map(JSON.quote)))
        o.add("bytes_checksummed", int: r.bytesChecksummed)
        o.add("seconds", double: r.seconds)
        return o.text
    }
}

/// First SIGINT, SIGTERM or SIGHUP: ask the ingest or export to stop and roll back. A second
/// one: the default action.
func installInterruptHandlers() {
    let handler: @convention(c) (Int32) -> Void = { sig in
        _ = interruptSignal.compareExchange(expected: 0, desired: sig, ordering: .relaxed)
        interruptRequested.store(true, ordering: .relaxed)
        signal(sig, SIG_DFL)
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
    signal(SIGHUP, handler)
}

import ArgumentParser
import ShardStore

#if canImport(Glibc)
    import Glibc
#endif

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what an index holds: samples, members, shards, bytes, extensions, splits, metadata.",
        usage: "shardstore info [<options>] <index>",
        discussion: """
            With --strategy, shows instead how a dataset on the index would be read: the strategy auto picks (memory, mmap, pread, or remote for shards in S3 or on a web server) and why, with the figures it used, and how positions are resolved. --split, --ext and --memory-limit change the selection and the memory counted on, and --cache the folder remote shards are copied into, as they do for `cat` and `bench`.

            Examples:
              shardstore info ds/index.sqlite
              shardstore info ds/index.sqlite --strategy --split train
              shardstore info s3.sqlite --strategy --cache /scratch/cache
              SHARDSTORE_MEMORY_LIMIT=256M shardstore info ds/index.sqlite --strategy
            """)

    @Argument(help: "The index file.")
    var index: String

    @Flag(help: "Show the loading strategy auto would pick, and why.")
    var strategy = false

    @Option(help: "With --strategy: the split to read.")
    var split: String?

    @Option(
        name: .customLong("ext"),
        help: ArgumentHelp("With --strategy: read only this extension (repeatable).", valueName: "ext"))
    var extensions: [String] = []

    @Option(help: ArgumentHelp("With --strategy: the memory to count on (512M, 2G).", valueName: "size"))
    var memoryLimit: String?

    @OptionGroup(title: "Cache folder (with --strategy)") var cache: CacheOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if !strategy, split != nil || !extensions.isEmpty || memoryLimit != nil {
            throw ValidationError("--split, --ext and --memory-limit go with --strategy.")
        }
        if !strategy, cache.directory != nil || cache.cacheLimit != nil {
            throw ValidationError("--cache and --cache-limit go with --strategy.")
        }
    }

    func run() throws {
        try reportingErrors {
            if strategy { return try showStrategy() }
            let reader = try IndexReader(path: index)
            let s = try reader.summary()
            let compressed = try reader.shards().filter(\.isCompressed)
            let seekTables = compressed.isEmpty ? [:] : try reader.seekTableSizes()
            if json {
                var o = JSONObject()
                o.add("index", string: index)
                o.add("schema_version", int: s.schemaVersion)
                o.add("samples", int: s.samples)
                o.add("members", int: s.members)
                o.add("shards", int: s.shards)
                o.add("shard_bytes", int: s.shardBytes)
                o.add("member_bytes", int: s.memberBytes)
                var exts = JSONObject()
                for e in s.extensions {
                    var x = JSONObject()
                    x.add("members", int: e.members)
                    x.add("bytes", int: e.bytes)
                    exts.add(e.ext, x.text)
                }
                o.add("extensions", exts.text)
                var splits = JSONObject()
                for sp in s.splits { splits.add(sp.name, int: sp.count) }
                o.add("splits", splits.text)
                o.add("unassigned", int: s.unassigned)
                var meta = JSONObject()
                for m in s.metadata { meta.add(m.key, m.value) }
                o.add("metadata", meta.text)
                if !compressed.isEmpty {
                    let list = try reader.shards().map { r -> String in
                        var x = JSONObject()
                        x.add("path", string: r.path)
                        x.add("compression", string: r.compression)
                        x.add("size", int: r.size)
                        x.add("uncompressed_size", int: r.tarSize)
                        x.add("seek_points", int: seekTables[r.id]?.points ?? 0)
                        x.add("seek_table_bytes", int: seekTables[r.id]?.bytes ?? 0)
                        return x.text
                    }
                    o.add("shard_list", "[" + list.joined(separator: ", ") + "]")
                }
                Terminal.line(o.text)
            } else {
                Terminal.line("index       \(index) (schema \(s.schemaVersion))")
                Terminal.line("samples     \(Format.count(s.samples))")
                Terminal.line("members     \(Format.count(s.members)) (\(Format.bytes(s.memberBytes)))")
                Terminal.line("shards      \(Format.count(s.shards)) (\(Format.bytes(s.shardBytes)))")
                Terminal.line("extensions")
                for e in s.extensions {
                    Terminal.line(
                        "  \(pad(e.ext, 12)) \(pad(Format.count(e.members), 12, right: true)) members  \(Format.bytes(e.bytes))"
                    )
                }
                Terminal.line("splits")
                for sp in s.splits {
                    Terminal.line("  \(pad(sp.name, 12)) \(pad(Format.count(sp.count), 12, right: true)) samples")
                }
                Terminal.line("  \(pad("(none)", 12)) \(pad(Format.count(s.unassigned), 12, right: true)) samples")
                Terminal.line("metadata")
                if s.metadata.isEmpty { Terminal.line("  (none)") }
                for m in s.metadata { Terminal.line("  \(m.key) = \(m.value)") }
                if !compressed.isEmpty {
                    // Each shard: its compression, bytes on disk -> tar bytes, and where it can be entered.
                    Terminal.line("compressed shards")
                    for r in compressed {
                        let points = seekTables[r.id]?.points ?? 0
                        let seek =
                            points > 0
                            ? "\(Format.count(points, "seek point")) (\(Format.bytes(seekTables[r.id]?.bytes ?? 0)))"
                            : "no seek points: read whole"
                        Terminal.line(
                            "  \(r.path)  \(r.compression)  \(Format.bytes(r.size)) -> \(Format.bytes(r.tarSize))  \(seek)"
                        )
                    }
                }
            }
            try Terminal.flush()
        }
    }
}

extension InfoCommand {
    func showStrategy() throws {
        var read = try ReadOptions.parse(memoryLimit.map { ["--memory-limit", $0] } ?? [])
        read.split = split
        read.extensions = extensions
        read.cache = cache
        let options = try read.datasetOptions()
        let plan = try Dataset.plan(
            index: index, split: split, extensions: extensions.isEmpty ? nil : extensions, options: options)
        let available = plan.memory.available
        let source: String
        switch plan.memory.availableSource {
        case .memAvailable: source = "MemAvailable"
        case .cgroup: source = "cgroup limit minus usage"
        case .override: source = plan.memory.overrideName
        case nil: source = "unknown"
        }
        if json {
            var o = JSONObject()
            o.add(plan.choice, plan.lookup)
            o.add("samples", int: plan.count)
            o.add("selection_bytes", int: plan.selectionBytes)
            if let available { o.add("available_bytes", int: available) } else { o.add("available_bytes", "null") }
            o.add("available_source", string: source)
            Terminal.line(o.text)
        } else {
            Terminal.line("strategy   \(plan.choice.strategy.rawValue)")
            Terminal.line("reason     \(plan.choice.reason(.commandLine))")
            Terminal.line("lookup     \(describe(plan.lookup))")
            Terminal.line("selection  \(Format.count(plan.count, "sample")), \(Format.bytes(plan.selectionBytes))")
            Terminal.line("memory     \(available.map { Format.bytes($0) } ?? "unknown") available (\(source))")
        }
        try Terminal.flush()
    }
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let n = max(0, width - s.count)
    return right ? String(repeating: " ", count: n) + s : s + String(repeating: " ", count: n)
}

struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List samples in index order (or split order): index, key, split, members.",
        discussion: """
            Text output: one line per sample, tab-separated: INDEX KEY SPLIT EXTS (SPLIT is '-' when unassigned; with --split, INDEX is the position in the split). Keys are printed as their exact bytes.

            JSON Lines output (--json), one sample per line:
              {"index": 0, "key": "000123", "split": "train",
               "members": {"jpg": {"shard": "shard-000000.tar", "offset": 1536,
                                   "length": 8192}}}
            "offset" is the member's data offset in the shard, "shard" the path as stored in the index (relative to the index file's folder when below it). A key that is not valid UTF-8 is written with \\udcNN escapes for its other bytes; in Python, os.fsencode(json.loads(line)["key"]) gives the exact bytes back.
            """)

    @Argument(help: "The index file.")
    var index: String

    @Option(help: "List only this split's samples, in split order.")
    var split: String?

    @Option(help: "Stop after N samples.")
    var limit: Int?

    @Flag(help: "Print JSON Lines.")
    var json = false

    func run() throws {
        try reportingErrors {
            let reader = try IndexReader(path: index)
            var shardPaths: [Int64: String] = [:]
            for s in try reader.shards() { shardPaths[s.id] = s.path }
            var position = 0
            try reader.forEachSample(inSplit: split) { sample in
                if let limit, position >= limit { return false }
                let shown = split == nil ? sample.index : position
                if json {
                    var members = JSONObject()
                    for m in sample.members {
                        var o = JSONObject()
                        o.add("shard", string: shardPaths[m.location.shardID] ?? "")
                        o.add("offset", int: m.location.dataOffset)
                        o.add("length", int: m.location.length)
                        members.add(m.ext, o.text)
                    }
                    var o = JSONObject()
                    o.add("index", int: shown)
                    o.add("key", sample.key.jsonLiteral)
                    o.add("split", string: sample.split)
                    o.add("members", members.text)
                    Terminal.line(o.text)
                } else {
                    Terminal.write(text: "\(shown)\t")
                    sample.key.bytes.withUnsafeBytes { Terminal.write(bytes: $0) }
                    Terminal.line("\t\(sample.split ?? "-")\t" + sample.members.map(\.ext).joined(separator: ","))
                }
                position += 1
                return true
            }
            try Terminal.flush()
        }
    }

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("Please give --limit a number of at least 0.") }
    }
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Write one member's exact bytes, or list a sample's members.",
        discussion: """
            Select the sample by KEY, or by --index I (a global index, or a position in --split). With --ext, writes that member's bytes to stdout (or to -o FILE); without it, lists the sample's members: EXT LENGTH SHARD OFFSET, tab-separated.

            With --cache DIR, a remote shard (S3, HTTP(S)) is downloaded whole into DIR on its first read, and later reads of it, by this and other commands, send no request.

            Examples:
              shardstore get ds/index.sqlite 000123 --ext jpg > 000123.jpg
              shardstore get ds/index.sqlite --index 0 --split val --ext json
              shardstore get ds/index.sqlite 000123
              shardstore get s3.sqlite 000123 --ext jpg --cache /scratch/cache
            """)

    @Argument(help: "The index file.")
    var index: String

    @Argument(help: "The sample's key.")
    var key: String?

    @Option(name: .customLong("index"), help: "The sample's global index (or position in --split).")
    var position: Int?

    @Option(help: "With --index: a position in this split.")
    var split: String?

    @Option(help: "The member's extension (jpg, json, seg.png...).")
    var ext: String?

    @Option(name: .shortAndLong, help: "Write the bytes to this file instead of stdout.")
    var output: String?

    @OptionGroup(title: "Remote shards") var remote: RemoteOptions

    @OptionGroup(title: "Cache folder") var cache: CacheOptions

    func validate() throws {
        if key == nil && position == nil { throw ValidationError("Please give a KEY or --index I.") }
        if key != nil && position != nil { throw ValidationError("Please give either a KEY or --index I, not both.") }
        if split != nil && position == nil {
            throw ValidationError("--split selects a position: please add --index I.")
        }
        if output != nil && ext == nil { throw ValidationError("-o writes one member's bytes: please add --ext EXT.") }
    }

    func run() throws {
        try reportingErrors {
            let reader = try IndexReader(path: index)
            let record: SampleRecord
            if let position {
                record = try split.map { try reader.sample(at: position, inSplit: $0) } ?? reader.sample(at: position)
            } else {
                record = try reader.sample(forKey: SampleKey(bytes: RawArguments.bytes(of: key!)))
            }
            let shards = try ShardReader(
                index: reader, remote: try remote.configuration(), cacheDirectory: cache.directory,
                cacheLimit: try cache.limit())
            guard let ext else {
                for m in record.members {
                    let path = shards.shard(m.location.shardID)?.path ?? ""
                    Terminal.line("\(m.ext)\t\(m.location.length)\t\(path)\t\(m.location.dataOffset)")
                }
                try Terminal.flush()
                return
            }
            let wanted = WebDatasetName.requestedExtension(ext) { e in record.members.contains { $0.ext == e } }
            guard let member = record.member(wanted) else {
                throw IndexError.unknownExtension(wanted, key: record.key, available: record.members.map(\.ext))
            }
            if let output {
                // Never over a file of the index: rename would replace the index, its journal,
                // its location file or a shard with one member's bytes.
                if let input = ProtectedInput.overwritten(
                    by: output, inputs: try IndexFiles.all(index: index, reader: reader))
                {
                    throw IndexError.invalidArgument(
                        "refusing to write '\(output)': it is \(input.role) ('\(input.path)'); choose another -o path")
                }
                let bytes = try shards.bytes(of: member, key: record.key, sample: record.id)
                let file = try AtomicFile(destination: output)
                try bytes.withUnsafeBytes { try file.write($0) }
                try file.commit()
            } else {
                let bytes = try shards.bytes(of: member, key: record.key, sample: record.id)
                bytes.withUnsafeBytes { Terminal.write(bytes: $0) }
                try Terminal.flush()
            }
        }
    }
}

/// Command-line arguments as the exact bytes the shell passed: Swift decodes argv as UTF-8 and
/// replaces invalid bytes with U+FFFD, which would lose keys that are not valid UTF-8.
enum RawArguments {
    /// The raw bytes of the argument that decodes to `argument` (its UTF-8 when none differs).
    static func bytes(of argument: String) -> [UInt8] {
        guard argument.unicodeScalars.contains("\u{FFFD}") else { return Array(argument.utf8) }
        for i in 0..<Int(CommandLine.argc) {
            guard let p = CommandLine.unsafeArgv[i] else { continue }
            let raw = Array(
                UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
            if String(decoding: raw, as: UTF8.self) == argument { return raw }
        }
        return Array(argument.utf8)
    }
}

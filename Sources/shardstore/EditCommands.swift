import ArgumentParser
import ShardStore

enum SplitAction: String, ExpressibleByArgument, CaseIterable {
    case assign, list, show, delete
}

struct SplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Define and inspect named splits (train, val, test).",
        usage: "shardstore split [<options>] <index> <action> [<name>]",
        discussion: """
            A sample belongs to at most one split; assigning it to another moves it. Positions in a split are dense (0..<count) and follow the global index order.

              split INDEX assign NAME --shards PATTERN
                  the samples of the shards matching a glob or brace pattern
              split INDEX assign NAME --keys FILE
                  the samples whose keys are listed in FILE, one per line
              split INDEX assign --ratio train=0.8,val=0.1,test=0.1 --seed N
                  shuffles the unassigned samples and those already in the
                  named splits with SplitMix64(N), then cuts them by the
                  ratios: the same assignment on every run and machine
              split INDEX list          every split with its size
              split INDEX show NAME     size, how it was defined, first keys
              split INDEX delete NAME   remove it (its samples become unassigned)
            """)

    @Argument(help: "The index file.")
    var index: String

    @Argument(help: "assign, list, show or delete.")
    var action: SplitAction

    @Argument(help: "The split's name.")
    var name: String?

    @Option(help: "assign: a glob or brace pattern of shard paths or file names.")
    var shards: String?

    @Option(help: "assign: a file with one key per line.")
    var keys: String?

    @Option(help: "assign: NAME=FRACTION,... (fractions add up to at most 1).")
    var ratio: String?

    @Option(help: "assign --ratio: the shuffle seed.")
    var seed: UInt64?

    @Flag(help: "list, show: print JSON.")
    var json = false

    func validate() throws {
        let selections = [shards, keys, ratio].compactMap { $0 }.count
        switch action {
        case .assign:
            guard selections == 1 else {
                throw ValidationError(
                    "Please give exactly one of --shards PATTERN, --keys FILE or --ratio NAME=FRACTION,...")
            }
            if ratio != nil {
                if name != nil { throw ValidationError("--ratio names its splits itself: please drop NAME.") }
                if seed == nil {
                    throw ValidationError("Please give --ratio a --seed N, so the assignment can be repeated.")
                }
            } else {
                if name == nil { throw ValidationError("Please name the split to assign to.") }
                if seed != nil { throw ValidationError("--seed goes with --ratio only.") }
            }
        case .show, .delete:
            if name == nil { throw ValidationError("Please name the split to \(action.rawValue).") }
            if selections > 0 || seed != nil {
                throw ValidationError("--shards, --keys, --ratio and --seed go with assign only.")
            }
        case .list:
            if name != nil { throw ValidationError("list takes no split name.") }
            if selections > 0 || seed != nil {
                throw ValidationError("--shards, --keys, --ratio and --seed go with assign only.")
            }
        }
    }

    func run() throws {
        try reportingErrors {
            switch action {
            case .assign:
                let selection: SplitSelection
                if let shards {
                    selection = .shards(shards)
                } else if let keys {
                    selection = .keys(try SplitEditor.readKeyFile(keys), source: keys)
                } else {
                    selection = .ratios(try SplitRatios(parsing: ratio!), seed: seed!)
                }
                for a in try SplitEditor.assign(index: index, split: name, selection: selection) {
                    var line = "split '\(a.split)': \(Format.count(a.total, "sample")) (\(Format.count(a.added)) added"
                    let moved = a.movedFrom.sorted { $0.key < $1.key }.map {
                        "\(Format.count($0.value)) from '\($0.key)'"
                    }
                    if !moved.isEmpty { line += ", moved " + moved.joined(separator: ", ") }
                    if a.unchanged > 0 { line += ", \(Format.count(a.unchanged)) already in it" }
                    Terminal.line(line + ")")
                }
            case .list:
                let reader = try IndexReader(path: index)
                let splits = try reader.splits()
                if json {
                    var o = JSONObject()
                    for s in splits { o.add(s.name, int: s.count) }
                    o.add("(none)", int: try reader.sampleCount() - splits.reduce(0) { $0 + $1.count })
                    Terminal.line(o.text)
                } else {
                    for s in splits { Terminal.line("\(s.name)\t\(s.count)") }
                }
            case .show:
                let reader = try IndexReader(path: index)
                let s = try reader.split(named: name!)
                var firstKeys: [SampleKey] = []
                try reader.forEachSample(inSplit: s.name) { sample in
                    firstKeys.append(sample.key)
                    return firstKeys.count < 5
                }
                if json {
                    var o = JSONObject()
                    o.add("name", string: s.name)
                    o.add("samples", int: s.count)
                    o.add("definition", s.definition)
                    o.add("created_at", string: s.createdAt)
                    o.add("first_keys", JSONObject.array(firstKeys.map(\.jsonLiteral)))
                    Terminal.line(o.text)
                } else {
                    Terminal.line("split       \(s.name)")
                    Terminal.line("samples     \(Format.count(s.count))")
                    Terminal.line("created     \(s.createdAt)")
                    Terminal.line("definition  \(s.definition)")
                    Terminal.line("first keys  \(firstKeys.map(\.description).joined(separator: ", "))")
                }
            case .delete:
                let n = try SplitEditor.delete(index: index, split: name!)
                Terminal.line("deleted split '\(name!)' (\(Format.count(n, "sample")) now unassigned)")
            }
            try Terminal.flush()
        }
    }
}

enum MetaAction: String, ExpressibleByArgument, CaseIterable {
    case set, get, list, delete
}

struct MetaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meta",
        abstract: "Set and read dataset metadata (JSON values).",
        discussion: """
              meta INDEX set KEY VALUE   VALUE is stored as JSON when it parses as
                                         JSON (42, true, {"a": 1}, "quoted"), else
                                         as a string; --string always stores a string
              meta INDEX get KEY         prints the JSON value
              meta INDEX list            KEY<TAB>VALUE lines (one object with --json)
              meta INDEX delete KEY

            Keys starting with 'shardstore.' are written by ShardStore itself.
            """)

    @Argument(help: "The index file.")
    var index: String

    @Argument(help: "set, get, list or delete.")
    var action: MetaAction

    @Argument(help: "KEY (and VALUE for set).")
    var arguments: [String] = []

    @Flag(help: "set: store VALUE as a JSON string even when it parses as JSON.")
    var string = false

    @Flag(help: "list: print one JSON object.")
    var json = false

    func validate() throws {
        let needed = [MetaAction.set: 2, .get: 1, .delete: 1, .list: 0][action]!
        guard arguments.count == needed else {
            throw ValidationError(
                needed == 0
                    ? "list takes no KEY."
                    : needed == 1
                        ? "Please give one KEY to \(action.rawValue)." : "Please give a KEY and a VALUE to set.")
        }
    }

    func run() throws {
        try reportingErrors {
            switch action {
            case .set:
                let stored = try MetadataEditor.set(
                    index: index, key: arguments[0], value: arguments[1], asString: string)
                Terminal.line("\(arguments[0]) = \(stored)")
            case .get:
                Terminal.line(try IndexReader(path: index).metadata(arguments[0]))
            case .list:
                let entries = try IndexReader(path: index).metadata()
                if json {
                    var o = JSONObject()
                    for e in entries { o.add(e.key, e.value) }
                    Terminal.line(o.text)
                } else {
                    for e in entries { Terminal.line("\(e.key)\t\(e.value)") }
                }
            case .delete:
                try MetadataEditor.delete(index: index, key: arguments[0])
            }
            try Terminal.flush()
        }
    }
}

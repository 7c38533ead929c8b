import ArgumentParser
import ShardStore
import Synchronization

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an index against its shards: every member's tar header, and with --data every byte.",
        usage: "shardstore verify [<options>] <index>",
        discussion: """
            Reads each shard once, front to back, and checks:
              - each shard: present, with the size and modification time recorded at ingest;
              - each index row: offsets multiples of 512, the data at least one block after the header, a length that is not negative, the data within the shard's size recorded at ingest;
              - each member's own tar header (the 512-byte block before its data): a valid checksum, a regular file, the size equal to the indexed length, and a name that gives the indexed key and extension. This catches shards rewritten or swapped in place with the same size and modification time, and damaged index rows. It reads 512 bytes per member.
              - with --data: every data byte, against the CRC-32C recorded by `shardstore ingest --checksums`. This catches any change to member data, at the cost of reading the whole shards. An index (or a shard of the selection) without checksums is refused with exit 1 and the command that records them.

            Output (stdout): one line per problem, as it is found, naming the shard, the byte offset, the key and extension (quoted, with control characters and bytes that are not UTF-8 escaped, so one problem is one line) and what was expected and found; then one summary line. With --json, one JSON object instead. A progress line is drawn on stderr when it is a terminal.

            Exit status: 0 when no problem was found, 1 when any was (or verify could not run: no index, an unknown split, --data without checksums), 64 for invalid arguments, 130 when interrupted.

            Examples:
              shardstore verify ds/index.sqlite
              shardstore verify ds/index.sqlite --split val --data
              shardstore ingest --checksums ds/index.sqlite 'ds/*.tar'
              shardstore verify --data ds/index.sqlite
            """)

    @Argument(help: "The index file.")
    var index: String

    @Option(help: "Check only this split's members (and the shards holding them).")
    var split: String?

    @Flag(help: "Also read every data byte and compare it with the CRC-32C recorded by `ingest --checksums`.")
    var data = false

    @OptionGroup(title: "Remote shards") var remote: RemoteOptions

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Flag(help: "Print only the problems, no summary or progress.")
    var quiet = false

    func validate() throws {
        if let split, split.isEmpty { throw ValidationError("Please give --split a non-empty name.") }
    }

    func run() throws {
        installInterruptHandlers()
        let collected = Mutex<[VerificationProblem]>([])
        let json = self.json
        let options = VerificationOptions(
            split: split, data: data,
            onProblem: { problem in
                if json {
                    collected.withLock { $0.append(problem) }
                } else {
                    Terminal.clearProgress()
                    Terminal.line(problem.description)
                }
            },
            progress: !quiet && Terminal.stderrIsTerminal ? Self.progressRenderer() : nil,
            isCancelled: { interruptRequested.load(ordering: .relaxed) }, remote: try remote.configuration())
        let report: VerificationReport
        do {
            report = try Verifier.run(index: index, options: options)
        } catch let error as VerificationError {
            try? Terminal.flush()
            Terminal.error(error.description)
            if case .cancelled = error { throw ExitCode(130) }
            throw ExitCode(1)
        } catch {
            try? Terminal.flush()
            Terminal.error(Terminal.message(for: error))
            throw ExitCode(1)
        }
        Terminal.clearProgress()
        if json {
            Terminal.line(Self.json(report, problems: collected.withLock { $0 }, index: index, split: split))
        } else if !quiet {
            Terminal.line(Self.summary(report))
        }
        try Terminal.flush()
        if !report.isClean { throw ExitCode(1) }
    }

    /// Draws progress at most ten times a second (and once at the end).
    static func progressRenderer() -> @Sendable (VerificationProgress) -> Void {
        let throttle = ProgressThrottle()
        return { p in
            guard throttle.shouldDraw(at: p.seconds, final: p.membersDone == p.membersTotal) else { return }
            let rate = p.seconds > 0 ? Double(p.bytesRead) / 1e6 / p.seconds : 0
            Terminal.progress(
                "verify: \(Format.count(p.membersDone))/\(Format.count(p.membersTotal)) members, \(Format.bytes(p.bytesRead)) read, \(Format.fixed(rate, 0)) MB/s"
            )
        }
    }

    /// `verified 12 members in 2 shards (headers): 6,144 bytes read, 0 problems, 0.01 s`.
    static func summary(_ r: VerificationReport) -> String {
        "verified \(Format.count(r.members, "member")) in \(Format.count(r.shards, "shard")) (\(r.checkedData ? "headers and data" : "headers")): "
            + "\(Format.count(r.bytesRead, "byte")) read, \(Format.count(r.problemCount, "problem")), \(Format.fixed(r.seconds, 2)) s"
    }

    static func json(_ r: VerificationReport, problems: [VerificationProblem], index: String, split: String?) -> String
    {
        var o = JSONObject()
        o.add("index", string: index)
        o.add("split", string: split)
        o.add("data", bool: r.checkedData)
        o.add("shards", int: r.shards)
        o.add("members", int: r.members)
        o.add("bytes_read", int: r.bytesRead)
        o.add("problem_count", int: r.problemCount)
        o.add(
            "problems",
            JSONObject.array(
                problems.map { p in
                    var q = JSONObject()
                    q.add("kind", string: p.kind.rawValue)
                    q.add("shard", string: p.shardPath)
                    q.add("offset", p.offset.map(String.init) ?? "null")
                    q.add("key", p.key?.jsonLiteral ?? "null")
                    q.add("ext", string: p.ext)
                    q.add("expected", string: p.expected)
                    q.add("found", string: p.found)
                    q.add("message", string: p.description)
                    return q.text
                }))
        o.add("clean", bool: r.isClean)
        o.add("seconds", double: r.seconds)
        return o.text
    }
}

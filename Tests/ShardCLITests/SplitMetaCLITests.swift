import Foundation
import ShardTestSupport
import Testing

@Suite("shardstore split")
struct SplitCLITests {
    static let splitUsage =
        "Usage: shardstore split [<options>] <index> <action> [<name>]\n  See 'shardstore split --help' for more information.\n"

    /// The `split` field of every `ls --json` line.
    static func splitFields(_ w: Workspace, index: String) throws -> [String?] {
        let result = try CLI.run(["ls", index, "--json"], in: w.path)
        #expect(result.status == 0)
        return try lines(result.stdoutText).map { try jsonObject($0)["split"] as? String }
    }

    @Test("assign --ratio --seed: the same assignment on two fresh indexes of the same shards")
    func ratioIsRepeatable() throws {
        let w = try Workspace(shards: 5, samples: 20)
        for index in ["a.sqlite", "b.sqlite"] {
            try expectRun(["ingest", index, "shard-*.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
            try expectRun(
                ["split", index, "assign", "--ratio", "train=0.8,val=0.1,test=0.1", "--seed", "7"], in: w.path,
                stdout:
                    "split 'train': 80 samples (80 added)\nsplit 'val': 10 samples (10 added)\nsplit 'test': 10 samples (10 added)\n",
                stderr: "")
        }
        let a = try Self.splitFields(w, index: "a.sqlite")
        let b = try Self.splitFields(w, index: "b.sqlite")
        #expect(a.count == 100)
        #expect(a == b)
        #expect(a.filter { $0 == "train" }.count == 80)
        #expect(a.filter { $0 == "val" }.count == 10)
        #expect(a.filter { $0 == "test" }.count == 10)
        // Running it again on the same index rebuilds the same splits.
        try expectRun(
            ["split", "a.sqlite", "assign", "--ratio", "train=0.8,val=0.1,test=0.1", "--seed", "7"], in: w.path,
            stdout:
                "split 'train': 80 samples (80 added)\nsplit 'val': 10 samples (10 added)\nsplit 'test': 10 samples (10 added)\n",
            stderr: "")
        #expect(try Self.splitFields(w, index: "a.sqlite") == a)
        // Another seed gives another assignment.
        try expectRun(
            ["split", "b.sqlite", "assign", "--ratio", "train=0.8,val=0.1,test=0.1", "--seed", "8"], in: w.path)
        #expect(try Self.splitFields(w, index: "b.sqlite") != a)
    }

    @Test("list, show, delete")
    func listShowDelete() throws {
        let w = try Workspace()
        try w.ingestAll()
        try expectRun(["split", "index.sqlite", "list"], in: w.path, stdout: "", stderr: "")
        try expectRun(
            ["split", "index.sqlite", "list", "--json"], in: w.path, stdout: "{\"(none)\": 12}\n", stderr: "")
        try expectRun(
            ["split", "index.sqlite", "assign", "--ratio", "train=0.5,val=0.25", "--seed", "0"], in: w.path,
            stdout: "split 'train': 6 samples (6 added)\nsplit 'val': 3 samples (3 added)\n", stderr: "")
        try expectRun(["split", "index.sqlite", "list"], in: w.path, stdout: "train\t6\nval\t3\n", stderr: "")
        let listJSON = try jsonObject(
            try expectRun(["split", "index.sqlite", "list", "--json"], in: w.path, stderr: "").stdoutText)
        #expect(listJSON as? [String: Int] == ["train": 6, "val": 3, "(none)": 3])

        let valKeys = lines(try CLI.run(["ls", "index.sqlite", "--split", "val"], in: w.path).stdoutText).map {
            $0.split(separator: "\t").map(String.init)[1]
        }
        #expect(valKeys.count == 3)
        let show = try expectRun(["split", "index.sqlite", "show", "val"], in: w.path, stderr: "")
        let pattern =
            literal("split       val\nsamples     3\ncreated     ") + #"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#
            + literal(
                "\ndefinition  [{\"by\":\"ratio\",\"ratio\":0.25,\"of\":12,\"seed\":0}]\nfirst keys  \(valKeys.joined(separator: ", "))\n"
            )
        #expect(wholeMatch(show.stdoutText, pattern), "\(show.stdoutText)")
        let showJSON = try jsonObject(
            try expectRun(["split", "index.sqlite", "show", "val", "--json"], in: w.path, stderr: "").stdoutText)
        #expect(showJSON["name"] as? String == "val")
        #expect(int(showJSON["samples"]) == 3)
        #expect(showJSON["first_keys"] as? [String] == valKeys)
        #expect((showJSON["definition"] as? [[String: Any]])?.first?["by"] as? String == "ratio")
        #expect(showJSON["created_at"] is String)

        try expectRun(
            ["split", "index.sqlite", "delete", "val"], in: w.path,
            stdout: "deleted split 'val' (3 samples now unassigned)\n", stderr: "")
        try expectRun(["split", "index.sqlite", "list"], in: w.path, stdout: "train\t6\n", stderr: "")
        try expectFailure(
            ["split", "index.sqlite", "show", "val"], in: w.path, message: "no split named 'val' (splits: train)")
        try expectFailure(
            ["split", "index.sqlite", "delete", "val"], in: w.path, message: "no split named 'val' (splits: train)")
        try expectFailure(
            ["split", "missing.sqlite", "list"], in: w.path,
            message: "index 'missing.sqlite' does not exist; create it with `shardstore ingest missing.sqlite SHARD...`"
        )
    }

    @Test("assign NAME --shards PATTERN")
    func assignShards() throws {
        let w = try Workspace()
        try w.ingestAll()
        try expectRun(
            ["split", "index.sqlite", "assign", "train", "--shards", "shard-{000000..000001}.tar"], in: w.path,
            stdout: "split 'train': 8 samples (8 added)\n", stderr: "")
        try expectRun(
            ["split", "index.sqlite", "assign", "val", "--shards", "*-000001.tar"], in: w.path,
            stdout: "split 'val': 4 samples (4 added, moved 4 from 'train')\n", stderr: "")
        try expectRun(
            ["split", "index.sqlite", "assign", "val", "--shards", "shard-000001.tar"], in: w.path,
            stdout: "split 'val': 4 samples (0 added, 4 already in it)\n", stderr: "")
        let expected = w.allSamples.enumerated().map { i, s in
            "\(i)\t\(s.key)\t\(i < 4 ? "train" : i < 8 ? "val" : "-")\tjpg,json\n"
        }.joined()
        try expectRun(["ls", "index.sqlite"], in: w.path, stdout: expected, stderr: "")
        // A pattern that matches no stored shard: exit 1, the index unchanged.
        let before = try w.bytes("index.sqlite")
        let result = try expectRun(
            ["split", "index.sqlite", "assign", "test", "--shards", "zzz-*.tar"], in: w.path, status: 1, stdout: "")
        #expect(
            result.stderrText.hasPrefix("shardstore: error: no indexed shard matches 'zzz-*.tar'; "),
            "\(result.stderrText)")
        #expect(lines(result.stderrText).count == 1)
        #expect(try w.bytes("index.sqlite") == before)
    }

    @Test("assign: the no-match message points at a command that shows the stored shard paths")
    func noMatchRemedy() throws {
        let w = try Workspace()
        try w.ingestAll()
        let result = try expectRun(
            ["split", "index.sqlite", "assign", "test", "--shards", "zzz-*.tar"], in: w.path, status: 1, stdout: "")
        // The message recommends `shardstore info INDEX --json`; it must list the stored shard paths.
        if result.stderrText.contains("`shardstore info INDEX --json`") {
            let info = try CLI.run(["info", "index.sqlite", "--json"], in: w.path)
            #expect(
                info.stdoutText.contains("shard-000000.tar"),
                "the error advises `shardstore info INDEX --json` to see stored shard paths, but it does not show them: \(info.stdoutText)"
            )
        }
    }

    @Test("assign NAME --keys FILE")
    func assignKeys() throws {
        let w = try Workspace()
        try w.ingestAll()
        try w.write("keys.txt", Array("000001\r\n000102\n\n000203\n".utf8))
        try expectRun(
            ["split", "index.sqlite", "assign", "test", "--keys", "keys.txt"], in: w.path,
            stdout: "split 'test': 3 samples (3 added)\n", stderr: "")
        try expectRun(
            ["ls", "index.sqlite", "--split", "test"], in: w.path,
            stdout: "0\t000001\ttest\tjpg,json\n1\t000102\ttest\tjpg,json\n2\t000203\ttest\tjpg,json\n",
            stderr: "")
        // A key that is not in the index: exit 1, nothing assigned.
        try w.write("more.txt", Array("000002\nnope\n000003\n".utf8))
        let before = try w.bytes("index.sqlite")
        try expectFailure(
            ["split", "index.sqlite", "assign", "test", "--keys", "more.txt"], in: w.path,
            message: "1 of the 3 keys in more.txt are not in the index ('nope'); fix the list and run the command again"
        )
        #expect(try w.bytes("index.sqlite") == before)
        try expectRun(["split", "index.sqlite", "list"], in: w.path, stdout: "test\t3\n", stderr: "")
        try expectFailure(
            ["split", "index.sqlite", "assign", "test", "--keys", "absent.txt"], in: w.path,
            message: "cannot open 'absent.txt': No such file or directory (errno 2)")
    }

    @Test("validation errors exit 64")
    func validation() throws {
        let w = try Workspace()
        try w.ingestAll()
        let before = try w.bytes("index.sqlite")
        let cases: [([String], String)] = [
            (
                ["assign", "--ratio", "train=0.8,val=0.2"],
                "Please give --ratio a --seed N, so the assignment can be repeated."
            ),
            (
                ["assign", "train"],
                "Please give exactly one of --shards PATTERN, --keys FILE or --ratio NAME=FRACTION,..."
            ),
            (
                ["assign", "train", "--shards", "*.tar", "--keys", "k.txt"],
                "Please give exactly one of --shards PATTERN, --keys FILE or --ratio NAME=FRACTION,..."
            ),
            (
                ["assign", "train", "--ratio", "train=1", "--seed", "1"],
                "--ratio names its splits itself: please drop NAME."
            ),
            (["assign", "--shards", "*.tar"], "Please name the split to assign to."),
            (["assign", "train", "--shards", "*.tar", "--seed", "3"], "--seed goes with --ratio only."),
            (["show"], "Please name the split to show."),
            (["delete"], "Please name the split to delete."),
            (["list", "train"], "list takes no split name."),
            (["list", "--seed", "1"], "--shards, --keys, --ratio and --seed go with assign only."),
        ]
        for (arguments, message) in cases {
            try expectRun(
                ["split", "index.sqlite"] + arguments, in: w.path, status: 64, stdout: "",
                stderr: "Error: \(message)\n" + Self.splitUsage)
        }
        #expect(try w.bytes("index.sqlite") == before)
    }

    @Test("bad ratios exit 1 or 64 with a message, and change nothing")
    func badRatios() throws {
        let w = try Workspace()
        try w.ingestAll()
        let before = try w.bytes("index.sqlite")
        for ratio in ["train=0.8,val=0.3", "train=abc", "train", "train=-0.1", "=0.5"] {
            let result = try CLI.run(["split", "index.sqlite", "assign", "--ratio", ratio, "--seed", "1"], in: w.path)
            #expect(result.status == 1 || result.status == 64, "--ratio \(ratio): \(result.status)")
            #expect(result.stdout.isEmpty)
            #expect(lines(result.stderrText).count >= 1)
            #expect(
                result.stderrText.contains("ratio") || result.stderrText.contains(ratio),
                "--ratio \(ratio): \(result.stderrText)")
        }
        #expect(try w.bytes("index.sqlite") == before)
    }
}

@Suite("shardstore meta")
struct MetaCLITests {
    @Test("set, get, list, delete; JSON and string values")
    func roundTrip() throws {
        let w = try Workspace(shards: 1)
        try w.ingestAll()
        let version = try shardstoreVersion()
        try expectRun(
            ["meta", "index.sqlite", "set", "license", "CC-BY-4.0"], in: w.path, stdout: "license = \"CC-BY-4.0\"\n",
            stderr: "")
        try expectRun(["meta", "index.sqlite", "set", "count", "42"], in: w.path, stdout: "count = 42\n", stderr: "")
        try expectRun(
            ["meta", "index.sqlite", "set", "text", "42", "--string"], in: w.path, stdout: "text = \"42\"\n", stderr: ""
        )
        try expectRun(["meta", "index.sqlite", "set", "flag", "true"], in: w.path, stdout: "flag = true\n", stderr: "")
        try expectRun(
            ["meta", "index.sqlite", "set", "classes", "{\"cat\": 0,  \"dog\": [1, 2]}"], in: w.path,
            stdout: "classes = {\"cat\":0,\"dog\":[1,2]}\n", stderr: "")
        try expectRun(
            ["meta", "index.sqlite", "set", "quoted", "\"hi\""], in: w.path, stdout: "quoted = \"hi\"\n", stderr: "")
        try expectRun(
            ["meta", "index.sqlite", "set", "name", "with \"quotes\" and \\"], in: w.path,
            stdout: "name = \"with \\\"quotes\\\" and \\\\\"\n", stderr: "")

        try expectRun(["meta", "index.sqlite", "get", "license"], in: w.path, stdout: "\"CC-BY-4.0\"\n", stderr: "")
        try expectRun(["meta", "index.sqlite", "get", "count"], in: w.path, stdout: "42\n", stderr: "")
        try expectRun(["meta", "index.sqlite", "get", "text"], in: w.path, stdout: "\"42\"\n", stderr: "")
        try expectRun(
            ["meta", "index.sqlite", "get", "shardstore.version"], in: w.path, stdout: "\"\(version)\"\n", stderr: "")
        try expectRun(
            ["meta", "index.sqlite", "list"], in: w.path,
            stdout: """
                classes\t{"cat":0,"dog":[1,2]}
                count\t42
                flag\ttrue
                license\t"CC-BY-4.0"
                name\t"with \\"quotes\\" and \\\\"
                quoted\t"hi"
                shardstore.content_id\t\(try contentID(of: "index.sqlite", in: w.path))
                shardstore.version\t"\(version)"
                text\t"42"

                """, stderr: "")
        let list = try expectRun(["meta", "index.sqlite", "list", "--json"], in: w.path, stderr: "")
        let o = try jsonObject(list.stdoutText)
        #expect(int(o["count"]) == 42)
        #expect(o["text"] as? String == "42")
        #expect(o["flag"] as? Bool == true)
        #expect(o["license"] as? String == "CC-BY-4.0")
        #expect(o["name"] as? String == "with \"quotes\" and \\")
        #expect((o["classes"] as? [String: Any])?["dog"] as? [Int] == [1, 2])

        try expectRun(["meta", "index.sqlite", "delete", "count"], in: w.path, stdout: "", stderr: "")
        try expectFailure(
            ["meta", "index.sqlite", "get", "count"], in: w.path,
            message: "no metadata entry 'count'; `shardstore meta INDEX list` shows the entries")
        try expectFailure(
            ["meta", "index.sqlite", "delete", "count"], in: w.path,
            message: "no metadata entry 'count'; `shardstore meta INDEX list` shows the entries")
        // Metadata survives a later ingest.
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        try expectRun(["meta", "index.sqlite", "get", "license"], in: w.path, stdout: "\"CC-BY-4.0\"\n", stderr: "")
    }

    @Test("keys starting with shardstore. are reserved: set and delete exit 1")
    func reservedPrefix() throws {
        let w = try Workspace(shards: 1)
        try w.ingestAll()
        let version = try shardstoreVersion()
        let before = try w.bytes("index.sqlite")
        try expectFailure(
            ["meta", "index.sqlite", "set", "shardstore.version", "9"], in: w.path,
            message: "metadata keys starting with 'shardstore.' are written by ShardStore itself; choose another key")
        try expectFailure(
            ["meta", "index.sqlite", "set", "shardstore.mine", "1"], in: w.path,
            message: "metadata keys starting with 'shardstore.' are written by ShardStore itself; choose another key")
        #expect(try w.bytes("index.sqlite") == before)
        let deleted = try expectRun(
            ["meta", "index.sqlite", "delete", "shardstore.version"], in: w.path, status: 1, stdout: "")
        #expect(deleted.stderrText.hasPrefix("shardstore: error: "), "\(deleted.stderrText)")
        #expect(deleted.stderrText.contains("'shardstore.'"), "\(deleted.stderrText)")
        try expectRun(
            ["meta", "index.sqlite", "get", "shardstore.version"], in: w.path, stdout: "\"\(version)\"\n", stderr: "")
    }

    @Test("argument errors exit 64; a missing index exits 1")
    func errors() throws {
        let w = try Workspace(shards: 1)
        try w.ingestAll()
        let usage =
            "Usage: shardstore meta <index> <action> [<arguments> ...] [--string] [--json]\n  See 'shardstore meta --help' for more information.\n"
        try expectRun(
            ["meta", "index.sqlite", "get"], in: w.path, status: 64, stdout: "",
            stderr: "Error: Please give one KEY to get.\n" + usage)
        try expectRun(
            ["meta", "index.sqlite", "set", "k"], in: w.path, status: 64, stdout: "",
            stderr: "Error: Please give a KEY and a VALUE to set.\n" + usage)
        try expectRun(
            ["meta", "index.sqlite", "list", "k"], in: w.path, status: 64, stdout: "",
            stderr: "Error: list takes no KEY.\n" + usage)
        try expectRun(
            ["meta", "index.sqlite", "delete"], in: w.path, status: 64, stdout: "",
            stderr: "Error: Please give one KEY to delete.\n" + usage)
        try expectFailure(
            ["meta", "index.sqlite", "set", "", "x"], in: w.path, message: "a metadata key must not be empty")
        try expectFailure(
            ["meta", "missing.sqlite", "set", "k", "v"], in: w.path,
            message: "index 'missing.sqlite' does not exist; create it with `shardstore ingest missing.sqlite SHARD...`"
        )
        try expectFailure(
            ["meta", "missing.sqlite", "list"], in: w.path,
            message: "index 'missing.sqlite' does not exist; create it with `shardstore ingest missing.sqlite SHARD...`"
        )
        #expect(try w.bytes("missing.sqlite") == nil)
    }
}

@Suite("shardstore --help")
struct HelpCLITests {
    /// Runs with a fixed terminal width, as help text wraps to it.
    static func help(_ arguments: [String], columns: Int = 80) throws -> ProcessResult {
        let w = try TemporaryDirectory()
        return try runProcess("COLUMNS=\(columns)", [try CLI.executable.get()] + arguments, currentDirectory: w.path)
    }

    @Test("the root help exits 0 and shows the examples")
    func root() throws {
        for arguments in [["--help"], ["-h"], ["help"]] {
            let result = try Self.help(arguments)
            #expect(result.status == 0)
            #expect(result.stderrText == "")
            let text = result.stdoutText
            #expect(text.hasPrefix("OVERVIEW: Index WebDataset tar shards in SQLite and read them like an array.\n"))
            for line in [
                "  shardstore ingest ds/index.sqlite 'ds/train-{000000..000099}.tar'",
                "  shardstore info ds/index.sqlite",
                "  shardstore get ds/index.sqlite 000123 --ext jpg -o 000123.jpg",
                "USAGE: shardstore <subcommand>",
            ] {
                #expect(lines(text).contains(line), "help shows \(line)")
            }
            for sub in ["ingest", "info", "ls", "get", "split", "meta"] {
                #expect(lines(text).contains { $0.hasPrefix("  \(sub) ") }, "help lists \(sub)")
            }
        }
    }

    @Test("the ingest help exits 0 and shows the examples and the policies")
    func ingest() throws {
        for arguments in [["ingest", "--help"], ["help", "ingest"]] {
            let result = try Self.help(arguments)
            #expect(result.status == 0)
            #expect(result.stderrText == "")
            let text = lines(result.stdoutText)
            for line in [
                "Examples:",
                "  shardstore ingest ds/index.sqlite 'ds/shard-*.tar'",
                "  shardstore ingest ds/index.sqlite 'ds/val-{0000..0009}.tar' --split val",
                "  error  stop, naming both locations (default)",
                "  first  keep the first copy, leave out later ones",
                "  last   keep the last copy",
            ] {
                #expect(text.contains(line), "ingest help shows \(line)")
            }
        }
    }

    /// Hand-wrapped discussion lines longer than the help width get re-wrapped line by line,
    /// which leaves single words on lines of their own and splits example commands.
    @Test(
        "help text at 80 columns keeps example commands whole and leaves no orphaned words",
        arguments: [
            ["--help"], ["ingest", "--help"], ["ls", "--help"], ["get", "--help"], ["split", "--help"],
            ["meta", "--help"], ["cat", "--help"], ["info", "--help"],
        ])
    func wrapping(arguments: [String]) throws {
        let result = try Self.help(arguments)
        #expect(result.status == 0)
        let text = lines(result.stdoutText)
        if arguments == ["--help"] {
            #expect(
                text.contains("  shardstore split ds/index.sqlite assign --ratio train=0.9,val=0.1 --seed 0"),
                "the split example is broken across lines")
        }
        // A paragraph may end with one word on its last line ("complete."); a fragment of a
        // list item or an example command may not.
        let orphans = text.filter { line in
            !line.isEmpty && !line.contains(" ") && !line.hasSuffix(":") && !line.hasSuffix(".")
        }
        #expect(orphans.isEmpty, "lines holding one wrapped-off word: \(orphans)")
    }

    @Test("--jobs states its default once")
    func jobsDefault() throws {
        let result = try Self.help(["ingest", "--help"], columns: 200)
        let jobs = lines(result.stdoutText).first { $0.hasPrefix("  --jobs <jobs>") } ?? ""
        #expect(jobs.components(separatedBy: "(default").count - 1 == 1, "\(jobs)")
    }

    @Test("--version prints the version")
    func version() throws {
        let result = try Self.help(["--version"])
        #expect(result.status == 0)
        #expect(wholeMatch(result.stdoutText, #"\d+\.\d+\.\d+[^\n]*\n"#), "\(result.stdoutText)")
    }
}

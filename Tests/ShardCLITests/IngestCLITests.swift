import Foundation
import ShardTestSupport
import Testing

@Suite("shardstore ingest")
struct IngestCLITests {
    @Test(
        "shards as a brace pattern, a glob or plain paths: one summary line, nothing on stderr",
        arguments: [
            ["shard-{000000..000002}.tar"],
            ["shard-*.tar"],
            ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"],
            ["shard-{000000,000001}.tar", "shard-00000[2].tar", "shard-000000.tar"],
        ])
    func summary(shardArguments: [String]) throws {
        let w = try Workspace()
        let members = w.shards.reduce(0) { $0 + $1.memberCount }
        let bytes = w.shards.reduce(0) { $0 + $1.bytes.count }
        let result = try expectRun(["ingest", "index.sqlite"] + shardArguments, in: w.path, stderr: "")
        let pattern = summaryPattern(
            shards: 3, new: 3, changed: 0, unchanged: 0, samples: 12, newSamples: 12, members: members, bytes: bytes)
        #expect(wholeMatch(result.stdoutText, pattern), "summary: \(result.stdoutText)")
        #expect(FileManager.default.fileExists(atPath: w.file("index.sqlite")))
        // The shards are stored relative to the index's folder, each once.
        let listed = try CLI.run(["ls", "index.sqlite", "--json"], in: w.path)
        var shardsSeen = Set<String>()
        for line in lines(listed.stdoutText) {
            let members = try jsonObject(line)["members"] as? [String: [String: Any]] ?? [:]
            for m in members.values { shardsSeen.insert(m["shard"] as? String ?? "?") }
        }
        #expect(shardsSeen == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"])
    }

    @Test("--quiet prints nothing")
    func quiet() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        try expectRun(["info", "index.sqlite", "--json"], in: w.path)
    }

    @Test("--json prints one JSON object with the counts")
    func json() throws {
        let w = try Workspace()
        let result = try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--json"], in: w.path, stderr: "")
        #expect(lines(result.stdoutText).count == 1)
        let o = try jsonObject(result.stdoutText)
        #expect(o["index"] as? String == "index.sqlite")
        #expect(o["created"] as? Bool == true)
        #expect(int(o["samples"]) == 12)
        #expect(int(o["samples_new"]) == 12)
        #expect(int(o["samples_removed"]) == 0)
        #expect(int(o["members"]) == 24)
        #expect(o["shards_added"] as? [String] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"])
        #expect(o["shards_changed"] as? [String] == [])
        #expect(o["shards_unchanged"] as? [String] == [])
        let skipped = o["skipped"] as? [String: Any] ?? [:]
        #expect(
            Set(skipped.keys)
                == ["directories", "symlinks", "hard_links", "other_types", "sparse", "metadata_names", "no_extension"])
        #expect(skipped.values.allSatisfy { int($0) == 0 })
        let duplicates = o["duplicates"] as? [String: Any] ?? [:]
        #expect(Set(duplicates.keys) == ["dropped_first", "replaced_last", "kept_as_samples"])
        #expect(duplicates.values.allSatisfy { int($0) == 0 })
        #expect(int(o["bytes_scanned"]) == w.shards.reduce(0) { $0 + $1.bytes.count })
        #expect(o["split"] is NSNull)
        #expect(o["seconds"] is NSNumber)
    }

    @Test("--json counts skipped entries and --split names the split")
    func jsonSkippedAndSplit() throws {
        let w = try Workspace(shards: 0)
        var tar = TarWriter(format: .ustar)
        tar.addDirectory("dir")
        tar.addFile("000001.jpg", [1, 2, 3])
        tar.addSymlink("000001.txt", target: "000001.jpg")
        tar.addFile("README", Array("no extension".utf8))
        tar.finish()
        try tar.write(to: w.file("odd.tar"))
        let result = try expectRun(["ingest", "index.sqlite", "odd.tar", "--json", "--split", "train"], in: w.path)
        let o = try jsonObject(result.stdoutText)
        let skipped = o["skipped"] as? [String: Any] ?? [:]
        #expect(int(skipped["directories"]) == 1)
        #expect(int(skipped["symlinks"]) == 1)
        #expect(int(skipped["no_extension"]) == 1)
        #expect(int(o["samples"]) == 1)
        #expect(int(o["members"]) == 1)
        let split = o["split"] as? [String: Any] ?? [:]
        #expect(split["name"] as? String == "train")
        #expect(int(split["total"]) == 1)
        // The text form says the same on stderr, once.
        let w2 = try Workspace(shards: 0)
        try tar.write(to: w2.file("odd.tar"))
        let text = try expectRun(
            ["ingest", "index.sqlite", "odd.tar", "--split", "train"], in: w2.path,
            stderr:
                "note: skipped 3 tar entries that are not sample members: 1 directory, 1 symlink, 1 name without extension\n"
        )
        let pattern = summaryPattern(
            shards: 1, new: 1, changed: 0, unchanged: 0, samples: 1, newSamples: 1, members: 1, bytes: tar.bytes.count,
            split: "; split 'train' has 1 sample")
        #expect(wholeMatch(text.stdoutText, pattern), "summary: \(text.stdoutText)")
    }

    @Test("a second ingest of the same shards skips them; a rewritten shard is re-indexed")
    func incremental() throws {
        var w = try Workspace()
        let members = w.shards.reduce(0) { $0 + $1.memberCount }
        let bytes = w.shards.reduce(0) { $0 + $1.bytes.count }
        let first = try expectRun(["ingest", "index.sqlite", "shard-*.tar"], in: w.path, stderr: "")
        #expect(
            wholeMatch(
                first.stdoutText,
                summaryPattern(
                    shards: 3, new: 3, changed: 0, unchanged: 0, samples: 12, newSamples: 12, members: members,
                    bytes: bytes)),
            "\(first.stdoutText)")

        let again = try expectRun(["ingest", "index.sqlite", "shard-*.tar"], in: w.path, stderr: "")
        #expect(
            wholeMatch(
                again.stdoutText,
                summaryPattern(
                    shards: 3, new: 0, changed: 0, unchanged: 3, samples: 12, newSamples: 0, members: 0, bytes: 0)),
            "\(again.stdoutText)")
        let againJSON = try jsonObject(
            try CLI.run(["ingest", "index.sqlite", "shard-*.tar", "--json"], in: w.path).stdoutText)
        #expect(
            againJSON["shards_unchanged"] as? [String] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"])
        #expect(int(againJSON["samples_new"]) == 0)
        #expect(againJSON["created"] as? Bool == false)

        // Shard 1 grows by one sample (and its data changes).
        let grown = makeShard(1, samples: 5, dataSalt: 3)
        try grown.write(in: w.path)
        w.shards[1] = grown
        let changed = try expectRun(["ingest", "index.sqlite", "shard-*.tar"], in: w.path, stderr: "")
        #expect(
            wholeMatch(
                changed.stdoutText,
                summaryPattern(
                    shards: 3, new: 0, changed: 1, unchanged: 2, samples: 13, newSamples: 1, members: 10,
                    bytes: grown.bytes.count)),
            "\(changed.stdoutText)")
        try expectIndexMatches(w)

        // Shard 1 shrinks to two samples: three are removed.
        let shrunk = makeShard(1, samples: 2, dataSalt: 5)
        try shrunk.write(in: w.path)
        w.shards[1] = shrunk
        let removed = try expectRun(["ingest", "index.sqlite", "shard-*.tar"], in: w.path, stderr: "")
        #expect(
            wholeMatch(
                removed.stdoutText,
                summaryPattern(
                    shards: 3, new: 0, changed: 1, unchanged: 2, samples: 10, newSamples: 0, removed: 3, members: 4,
                    bytes: shrunk.bytes.count)),
            "\(removed.stdoutText)")
        try expectIndexMatches(w)
    }

    /// `ls --json` lists exactly the workspace's samples in shard order, and `get` returns their bytes.
    func expectIndexMatches(_ w: Workspace, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let listed = lines(try CLI.run(["ls", "index.sqlite", "--json"], in: w.path).stdoutText)
        let samples = w.allSamples
        #expect(listed.count == samples.count, sourceLocation: sourceLocation)
        for (i, (line, sample)) in zip(listed, samples).enumerated() {
            let o = try jsonObject(line)
            #expect(int(o["index"]) == i, sourceLocation: sourceLocation)
            #expect(o["key"] as? String == sample.key, sourceLocation: sourceLocation)
        }
        for sample in samples {
            for m in sample.members {
                let got = try CLI.run(["get", "index.sqlite", sample.key, "--ext", m.ext], in: w.path)
                #expect(got.status == 0, "\(got.stderrText)", sourceLocation: sourceLocation)
                #expect(got.stdout == m.data, "bytes of \(sample.key).\(m.ext)", sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite("shardstore ingest --on-duplicate")
struct DuplicateCLITests {
    /// `a.jpg`, `a.txt`, `a.jpg` again, `b.jpg`: headers at 0, 1024, 2048, 3072.
    static func duplicateShard() -> TarWriter {
        var tar = TarWriter(format: .ustar)
        tar.addFile("a.jpg", Array("1".utf8))
        tar.addFile("a.txt", Array("t".utf8))
        tar.addFile("a.jpg", Array("22".utf8))
        tar.addFile("b.jpg", Array("3".utf8))
        tar.finish()
        return tar
    }

    @Test("the default is an error naming both locations and the choices")
    func defaultIsError() throws {
        let w = try Workspace(shards: 0)
        let tar = Self.duplicateShard()
        try tar.write(to: w.file("dup.tar"))
        #expect(tar.entries[2].headerOffset == 2048)
        try expectFailure(
            ["ingest", "index.sqlite", "dup.tar"], in: w.path,
            message:
                "duplicate member 'a.jpg': first at 'dup.tar' offset 0, again at 'dup.tar' offset 2048; choose what to do with --on-duplicate first|last|keep (no index was created)"
        )
        #expect(try w.listing() == ["dup.tar"])
        try expectFailure(
            ["ingest", "index.sqlite", "dup.tar", "--on-duplicate", "error"], in: w.path,
            message:
                "duplicate member 'a.jpg': first at 'dup.tar' offset 0, again at 'dup.tar' offset 2048; choose what to do with --on-duplicate first|last|keep (no index was created)"
        )
    }

    @Test("an unknown policy is an argument error")
    func unknownPolicy() throws {
        let w = try Workspace(shards: 0)
        try Self.duplicateShard().write(to: w.file("dup.tar"))
        let result = try expectRun(
            ["ingest", "index.sqlite", "dup.tar", "--on-duplicate", "bogus"], in: w.path, status: 64, stdout: "")
        #expect(
            result.stderrText.hasPrefix(
                "Error: The value 'bogus' is invalid for '--on-duplicate <on-duplicate>'. Please provide one of 'error', 'first', 'last' or 'keep'.\n"
            ), "\(result.stderrText)")
    }

    @Test(
        "first, last and keep succeed with a note",
        arguments: [
            (
                "first", "note: --on-duplicate first: left out 1 repeated member (the first copy of each was kept)\n",
                2, [UInt8]("1".utf8)
            ),
            ("last", "note: --on-duplicate last: 1 repeated member replaced earlier copies\n", 2, [UInt8]("22".utf8)),
            (
                "keep",
                "note: --on-duplicate keep: 1 repeated member became extra samples with the same key; look those keys up by index\n",
                3, [UInt8]("1".utf8)
            ),
        ])
    func policies(policy: String, note: String, samples: Int, firstJPG: [UInt8]) throws {
        let w = try Workspace(shards: 0)
        let tar = Self.duplicateShard()
        try tar.write(to: w.file("dup.tar"))
        let result = try expectRun(
            ["ingest", "index.sqlite", "dup.tar", "--on-duplicate", policy], in: w.path, stderr: note)
        // The members written: one fewer than the tar holds under first and last.
        let members = policy == "keep" ? 4 : 3
        #expect(
            wholeMatch(
                result.stdoutText,
                summaryPattern(
                    shards: 1, new: 1, changed: 0, unchanged: 0, samples: samples, newSamples: samples,
                    members: members,
                    bytes: tar.bytes.count)),
            "\(result.stdoutText)")
        let o = try jsonObject(try CLI.run(["info", "index.sqlite", "--json"], in: w.path).stdoutText)
        #expect(int(o["samples"]) == samples)
        #expect(int(o["members"]) == (policy == "keep" ? 4 : 3))
        let got = try CLI.run(["get", "index.sqlite", "--index", "0", "--ext", "jpg"], in: w.path)
        #expect(got.stdout == firstJPG)
        if policy == "keep" {
            try expectRun(
                ["ls", "index.sqlite"], in: w.path, stdout: "0\ta\t-\tjpg,txt\n1\ta\t-\tjpg\n2\tb\t-\tjpg\n", stderr: ""
            )
            try expectFailure(
                ["get", "index.sqlite", "a", "--ext", "jpg"], in: w.path,
                message:
                    "key 'a' names 2 samples (duplicates kept at ingest) at indexes 0, 1; select one by index with --index"
            )
            let second = try CLI.run(["get", "index.sqlite", "--index", "1", "--ext", "jpg"], in: w.path)
            #expect(second.stdout == Array("22".utf8))
        } else {
            try expectRun(["ls", "index.sqlite"], in: w.path, stdout: "0\ta\t-\tjpg,txt\n1\tb\t-\tjpg\n", stderr: "")
            let byKey = try CLI.run(["get", "index.sqlite", "a", "--ext", "jpg"], in: w.path)
            #expect(byKey.stdout == firstJPG)
        }
    }
}

import Foundation
import ShardTestSupport
import Testing

@Suite("shardstore info, ls, get")
struct QueryCLITests {
    @Test("info: text")
    func infoText() throws {
        let w = try Workspace()
        try w.ingestAll()
        let version = try shardstoreVersion()
        let id = try contentID(of: "index.sqlite", in: w.path)
        let samples = w.allSamples
        let jpgBytes = samples.reduce(0) { $0 + $1.members[0].data.count }
        let jsonBytes = samples.reduce(0) { $0 + $1.members[1].data.count }
        let shardBytes = w.shards.reduce(0) { $0 + $1.bytes.count }
        try expectRun(
            ["info", "index.sqlite"], in: w.path,
            stdout: """
                index       index.sqlite (schema 4)
                samples     12
                members     24 (\(decimalBytes(jpgBytes + jsonBytes)))
                shards      3 (\(decimalBytes(shardBytes)))
                extensions
                  jpg                    12 members  \(decimalBytes(jpgBytes))
                  json                   12 members  \(decimalBytes(jsonBytes))
                splits
                  (none)                 12 samples
                metadata
                  shardstore.content_id = \(id)
                  shardstore.version = "\(version)"

                """, stderr: "")
    }

    @Test("info --json")
    func infoJSON() throws {
        let w = try Workspace()
        try w.ingestAll()
        try expectRun(["split", "index.sqlite", "assign", "val", "--shards", "shard-000002.tar"], in: w.path)
        try expectRun(["meta", "index.sqlite", "set", "license", "CC-BY-4.0"], in: w.path)
        let result = try expectRun(["info", "index.sqlite", "--json"], in: w.path, stderr: "")
        #expect(lines(result.stdoutText).count == 1)
        let o = try jsonObject(result.stdoutText)
        let samples = w.allSamples
        #expect(o["index"] as? String == "index.sqlite")
        #expect(int(o["schema_version"]) == 4)
        #expect(int(o["samples"]) == 12)
        #expect(int(o["members"]) == 24)
        #expect(int(o["shards"]) == 3)
        #expect(int(o["shard_bytes"]) == w.shards.reduce(0) { $0 + $1.bytes.count })
        #expect(int(o["member_bytes"]) == samples.reduce(0) { $0 + $1.members.reduce(0) { $0 + $1.data.count } })
        let extensions = o["extensions"] as? [String: [String: Any]] ?? [:]
        #expect(Set(extensions.keys) == ["jpg", "json"])
        #expect(int(extensions["jpg"]?["members"]) == 12)
        #expect(int(extensions["json"]?["members"]) == 12)
        #expect(int(extensions["jpg"]?["bytes"]) == samples.reduce(0) { $0 + $1.members[0].data.count })
        #expect(o["splits"] as? [String: Int] == ["val": 4])
        #expect(int(o["unassigned"]) == 8)
        let metadata = o["metadata"] as? [String: Any] ?? [:]
        #expect(metadata["license"] as? String == "CC-BY-4.0")
        #expect(metadata["shardstore.version"] as? String == (try shardstoreVersion()))
    }

    @Test("ls: tab-separated INDEX KEY SPLIT EXTS")
    func lsText() throws {
        let w = try Workspace()
        try w.ingestAll()
        let expected = w.allSamples.enumerated().map { "\($0.offset)\t\($0.element.key)\t-\tjpg,json\n" }.joined()
        try expectRun(["ls", "index.sqlite"], in: w.path, stdout: expected, stderr: "")
        try expectRun(
            ["ls", "index.sqlite", "--limit", "2"], in: w.path,
            stdout: "0\t000000\t-\tjpg,json\n1\t000001\t-\tjpg,json\n", stderr: "")
        try expectRun(["ls", "index.sqlite", "--limit", "0"], in: w.path, stdout: "", stderr: "")
        try expectRun(
            ["ls", "index.sqlite", "--limit=-1"], in: w.path, status: 64, stdout: "",
            stderr:
                "Error: Please give --limit a number of at least 0.\nUsage: shardstore ls <index> [--split <split>] [--limit <limit>] [--json]\n  See 'shardstore ls --help' for more information.\n"
        )
    }

    @Test("ls --split: positions in the split, split order; --limit")
    func lsSplit() throws {
        let w = try Workspace()
        try w.ingestAll()
        try expectRun(
            ["split", "index.sqlite", "assign", "val", "--shards", "shard-00000[12].tar"], in: w.path,
            stdout: "split 'val': 8 samples (8 added)\n", stderr: "")
        let val = w.shards[1].samples + w.shards[2].samples
        try expectRun(
            ["ls", "index.sqlite", "--split", "val"], in: w.path,
            stdout: val.enumerated().map { "\($0.offset)\t\($0.element.key)\tval\tjpg,json\n" }.joined(), stderr: "")
        try expectRun(
            ["ls", "index.sqlite", "--split", "val", "--limit", "3"], in: w.path,
            stdout: val.prefix(3).enumerated().map { "\($0.offset)\t\($0.element.key)\tval\tjpg,json\n" }.joined(),
            stderr: "")
        let all = lines(try expectRun(["ls", "index.sqlite"], in: w.path).stdoutText)
        #expect(all.first == "0\t000000\t-\tjpg,json")
        #expect(all[4] == "4\t000100\tval\tjpg,json")
        try expectFailure(
            ["ls", "index.sqlite", "--split", "nope"], in: w.path, message: "no split named 'nope' (splits: val)")
    }

    @Test("ls --json: JSON Lines whose offsets point at the members' exact bytes")
    func lsJSON() throws {
        let w = try Workspace()
        try w.ingestAll()
        let result = try expectRun(["ls", "index.sqlite", "--json"], in: w.path, stderr: "")
        let listed = lines(result.stdoutText)
        #expect(listed.count == 12)
        var expected: [(shard: FixtureShard, sample: FixtureSample)] = []
        for shard in w.shards { for sample in shard.samples { expected.append((shard, sample)) } }
        for (i, (line, e)) in zip(listed, expected).enumerated() {
            let o = try jsonObject(line)
            #expect(int(o["index"]) == i)
            #expect(o["key"] as? String == e.sample.key)
            #expect(o["split"] is NSNull)
            let members = o["members"] as? [String: [String: Any]] ?? [:]
            #expect(Set(members.keys) == ["jpg", "json"])
            for m in e.sample.members {
                let entry = try #require(members[m.ext], "\(e.sample.key).\(m.ext) listed")
                #expect(entry["shard"] as? String == e.shard.name)
                let offset = try #require(int(entry["offset"]))
                let length = try #require(int(entry["length"]))
                #expect(Int64(offset) == e.shard.dataOffset(of: e.sample.key, m.ext))
                #expect(length == m.data.count)
                // Read the shard file itself at (offset, length).
                let file = try #require(FileHandle(forReadingAtPath: w.file(entry["shard"] as? String ?? "")))
                defer { try? file.close() }
                try file.seek(toOffset: UInt64(offset))
                let bytes = [UInt8](try file.read(upToCount: length) ?? Data())
                #expect(bytes == m.data, "bytes at \(offset)+\(length) are \(e.sample.key).\(m.ext)")
            }
        }
        let limited = try expectRun(["ls", "index.sqlite", "--json", "--limit", "1"], in: w.path, stderr: "")
        #expect(lines(limited.stdoutText) == [listed[0]])
    }

    @Test("get KEY --ext EXT writes the exact bytes; -o FILE writes the file")
    func getBytes() throws {
        let w = try Workspace()
        try w.ingestAll()
        for sample in w.allSamples {
            for m in sample.members {
                let result = try expectRun(["get", "index.sqlite", sample.key, "--ext", m.ext], in: w.path, stderr: "")
                #expect(result.stdout == m.data, "\(sample.key).\(m.ext)")
            }
        }
        let sample = w.shards[1].samples[2]
        try expectRun(["get", "index.sqlite", sample.key, "--ext", ".jpg"], in: w.path, stderr: "")
        let dotted = try CLI.run(["get", "index.sqlite", sample.key, "--ext", ".jpg"], in: w.path)
        #expect(dotted.stdout == sample.members[0].data)
        try expectRun(
            ["get", "index.sqlite", sample.key, "--ext", "jpg", "-o", "out.jpg"], in: w.path, stdout: "", stderr: "")
        #expect(try w.bytes("out.jpg") == sample.members[0].data)
        try expectRun(
            ["get", "index.sqlite", sample.key, "--ext", "json", "--output", "out.jpg"], in: w.path, stdout: "",
            stderr: "")
        #expect(try w.bytes("out.jpg") == sample.members[1].data)
        #expect(!(try w.listing()).contains { $0.contains("partial") })
    }

    @Test("get --index I [--split NAME] --ext EXT")
    func getByIndex() throws {
        let w = try Workspace()
        try w.ingestAll()
        let all = w.allSamples
        let global = try expectRun(["get", "index.sqlite", "--index", "5", "--ext", "jpg"], in: w.path, stderr: "")
        #expect(global.stdout == all[5].members[0].data)
        try expectRun(["split", "index.sqlite", "assign", "val", "--shards", "shard-000002.tar"], in: w.path)
        let inSplit = try expectRun(
            ["get", "index.sqlite", "--index", "1", "--split", "val", "--ext", "json"], in: w.path, stderr: "")
        #expect(inSplit.stdout == w.shards[2].samples[1].members[1].data)
        try expectFailure(
            ["get", "index.sqlite", "--index", "4", "--split", "val", "--ext", "json"], in: w.path,
            message: "index 4 is out of range: split 'val' has 4 samples (valid: 0 to 3)")
    }

    @Test("get KEY without --ext lists the members: EXT LENGTH SHARD OFFSET")
    func getMembers() throws {
        let w = try Workspace()
        try w.ingestAll()
        let shard = w.shards[1]
        let sample = shard.samples[3]
        let expected = sample.members.map {
            "\($0.ext)\t\($0.data.count)\t\(shard.name)\t\(shard.dataOffset(of: sample.key, $0.ext)!)\n"
        }.joined()
        try expectRun(["get", "index.sqlite", sample.key], in: w.path, stdout: expected, stderr: "")
        try expectRun(["get", "index.sqlite", "--index", "7"], in: w.path, stdout: expected, stderr: "")
    }

    @Test("get: lookup errors exit 1 with a message")
    func getErrors() throws {
        let w = try Workspace()
        try w.ingestAll()
        try expectFailure(
            ["get", "index.sqlite", "nope", "--ext", "jpg"], in: w.path,
            message: "no sample has key 'nope'; `shardstore ls INDEX` lists the keys")
        try expectFailure(
            ["get", "index.sqlite", "--index", "12", "--ext", "jpg"], in: w.path,
            message: "index 12 is out of range: the dataset has 12 samples (valid: 0 to 11)")
        try expectFailure(
            ["get", "index.sqlite", "--index=-1", "--ext", "jpg"], in: w.path,
            message: "index -1 is out of range: the dataset has 12 samples (valid: 0 to 11)")
        try expectFailure(
            ["get", "index.sqlite", "000001", "--ext", "png"], in: w.path,
            message: "sample '000001' has no member '.png' (members: .jpg, .json)")
        try expectFailure(
            ["get", "index.sqlite", "--index", "0", "--split", "val", "--ext", "jpg"], in: w.path,
            message: "no split named 'val' (the index has no splits)")
        try expectFailure(
            ["get", "missing.sqlite", "000001", "--ext", "jpg"], in: w.path,
            message: "index 'missing.sqlite' does not exist; create it with `shardstore ingest missing.sqlite SHARD...`"
        )
        #expect(try w.bytes("missing.sqlite") == nil, "a failed get created the index")
        try expectFailure(
            ["ls", "missing.sqlite"], in: w.path,
            message: "index 'missing.sqlite' does not exist; create it with `shardstore ingest missing.sqlite SHARD...`"
        )
        try expectFailure(
            ["info", "missing.sqlite"], in: w.path,
            message: "index 'missing.sqlite' does not exist; create it with `shardstore ingest missing.sqlite SHARD...`"
        )
        #expect(try w.bytes("missing.sqlite") == nil)
        // -o is not written on failure.
        try expectFailure(
            ["get", "index.sqlite", "000001", "--ext", "png", "-o", "out.png"], in: w.path,
            message: "sample '000001' has no member '.png' (members: .jpg, .json)")
        #expect(try w.bytes("out.png") == nil)
    }

    @Test("get: argument errors exit 64")
    func getArgumentErrors() throws {
        let w = try Workspace()
        try w.ingestAll()
        let usage =
            "Usage: shardstore get [<options>] <index> [<key>]\n  See 'shardstore get --help' for more information.\n"
        try expectRun(
            ["get", "index.sqlite"], in: w.path, status: 64, stdout: "",
            stderr: "Error: Please give a KEY or --index I.\n" + usage)
        try expectRun(
            ["get", "index.sqlite", "000001", "--index", "1"], in: w.path, status: 64, stdout: "",
            stderr: "Error: Please give either a KEY or --index I, not both.\n" + usage)
        try expectRun(
            ["get", "index.sqlite", "000001", "--split", "val"], in: w.path, status: 64, stdout: "",
            stderr: "Error: --split selects a position: please add --index I.\n" + usage)
        try expectRun(
            ["get", "index.sqlite", "000001", "-o", "x.jpg"], in: w.path, status: 64, stdout: "",
            stderr: "Error: -o writes one member's bytes: please add --ext EXT.\n" + usage)
        #expect(try w.bytes("x.jpg") == nil)
    }

    @Test("a shard changed after ingest is refused, not read")
    func changedShard() throws {
        let w = try Workspace()
        try w.ingestAll()
        let path = w.file("shard-000001.tar")
        let original = w.shards[1].bytes
        // Different size.
        try w.write("shard-000001.tar", original + [0])
        try expectFailure(
            ["get", "index.sqlite", "000101", "--ext", "jpg"], in: w.path,
            message:
                "shard 'shard-000001.tar' changed since ingest (size \(original.count) bytes at ingest, \(original.count + 1) now); run ingest again (`shardstore ingest index.sqlite shard-000001.tar`) before reading"
        )
        // Other shards still read.
        let other = try expectRun(["get", "index.sqlite", "000001", "--ext", "jpg"], in: w.path, stderr: "")
        #expect(other.stdout == w.shards[0].samples[1].members[0].data)
        // Same size, different bytes and modification time.
        var rewritten = original
        let offset = Int(w.shards[1].dataOffset(of: "000101", "jpg")!)
        rewritten[offset] ^= 0xFF
        try w.write("shard-000001.tar", rewritten)
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: 1_600_000_000)], ofItemAtPath: path)
        try expectFailure(
            ["get", "index.sqlite", "000101", "--ext", "jpg"], in: w.path,
            message:
                "shard 'shard-000001.tar' changed since ingest (modification time differs from the one recorded at ingest); run ingest again (`shardstore ingest index.sqlite shard-000001.tar`) before reading"
        )
        // After ingesting again, the new bytes are served.
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        let fresh = try expectRun(["get", "index.sqlite", "000101", "--ext", "jpg"], in: w.path, stderr: "")
        #expect(fresh.stdout == Array(rewritten[offset..<(offset + w.shards[1].samples[1].members[0].data.count)]))
    }

    @Test("a shard deleted after ingest: the message says so and gives a remedy that works")
    func deletedShard() throws {
        let w = try Workspace()
        try w.ingestAll()
        try FileManager.default.removeItem(atPath: w.file("shard-000002.tar"))
        let result = try expectRun(
            ["get", "index.sqlite", "000201", "--ext", "jpg"], in: w.path, status: 1, stdout: "")
        #expect(
            result.stderrText
                == "shardstore: error: shard 'shard-000002.tar' is missing (it was indexed in 'index.sqlite'); restore the file, or ingest the remaining shards into a new index\n",
            "\(result.stderrText)")
        #expect(lines(result.stderrText).count == 1)
        // The advice must not be to ingest the missing file again: that fails with "does not exist".
        let advice = try CLI.run(["ingest", "index.sqlite", "shard-000002.tar"], in: w.path)
        #expect(
            !result.stderrText.contains("run ingest again") || advice.status == 0,
            "the message advises `shardstore ingest INDEX shard-000002.tar`, which fails: \(advice.stderrText)")
    }
}

import Foundation
import ShardTestSupport
import Testing

@Suite("shardstore export --format raw")
struct ExportRawCLITests {
    private let usage =
        "Usage: shardstore export [<options>] <index> --format <format> --out <path>\n  See 'shardstore export --help' for more information.\n"

    /// The member bytes of `samples`, in all.
    private func memberBytes(_ samples: [FixtureSample], exts: Set<String>? = nil) -> Int {
        samples.reduce(0) { $0 + $1.members.filter { exts?.contains($0.ext) ?? true }.reduce(0) { $0 + $1.data.count } }
    }

    @Test("files layout: the summary line, and every member's exact bytes at DIR/<key>.<ext>")
    func filesSummary() throws {
        let w = try Workspace()
        try w.ingestAll()
        let bytes = memberBytes(w.allSamples)
        try expectRunMatching(
            ["export", "index.sqlite", "--format", "raw", "--out", "out", "--layout", "files"], in: w.path,
            stdout: literal(
                "exported 12 samples (24 members, \(decimalBytes(bytes)) read) to raw 'out' (\(decimalBytes(bytes)))")
                + #" in \d+\.\d\d s\n"#)
        let names = try FileManager.default.contentsOfDirectory(atPath: w.file("out")).sorted()
        #expect(names == w.allSamples.flatMap { s in s.members.map { "\(s.key).\($0.ext)" } }.sorted())
        for s in w.allSamples {
            for m in s.members { #expect(try w.bytes("out/\(s.key).\(m.ext)") == m.data, "\(s.key).\(m.ext)") }
        }
        #expect(try w.listing() == (w.shards.map(\.name) + ["index.sqlite", "index.sqlite-locations", "out"]).sorted())
    }

    @Test("packed layout with --split, --ext and --json: the report, and the arrays")
    func packedJSON() throws {
        let w = try Workspace()
        try w.ingestAll()
        try expectRun(["split", "index.sqlite", "assign", "val", "--shards", "shard-000001.tar"], in: w.path)
        let result = try expectRun(
            [
                "export", "index.sqlite", "--format", "raw", "--out", "packed", "--layout", "packed", "--split", "val",
                "--ext", "jpg", "--strategy", "pread", "--json",
            ], in: w.path, stderr: "")
        let o = try jsonObject(result.stdoutText)
        let val = w.shards[1].samples
        let jpg = val.map { $0.members.first { $0.ext == "jpg" }!.data }
        #expect(o["format"] as? String == "raw")
        #expect(o["out"] as? String == "packed")
        #expect(int(o["samples"]) == 4)
        #expect(int(o["members"]) == 4)
        #expect(int(o["bytes_read"]) == jpg.reduce(0) { $0 + $1.count })
        #expect(o["entries"] as? [String] == ["val"])
        #expect(o["strategy"] as? String == "pread")
        #expect(o["reason"] as? String == "requested")
        let folder = w.file("packed/val")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == [
                "jpg.bin", "jpg.offsets.npy", "keys.txt",
            ])
        #expect(try w.bytes("packed/val/jpg.bin") == Array(jpg.joined()))
        #expect(try w.bytes("packed/val/keys.txt") == Array(val.map { $0.key + "\n" }.joined().utf8))
        let npy = try w.bytes("packed/val/jpg.offsets.npy") ?? []
        #expect(int(o["bytes_written"]) == jpg.reduce(0) { $0 + $1.count } + npy.count + 4 * 7)
        var offsets: [Int64] = [0]
        for j in jpg { offsets.append(offsets.last! + Int64(j.count)) }
        let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"
        var expected = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0] + Array(header.utf8)
        expected += [UInt8](repeating: 0x20, count: 128 - 1 - expected.count) + [0x0A]
        for v in offsets { withUnsafeBytes(of: v.littleEndian) { expected += $0 } }
        #expect(npy == expected)
    }

    @Test("an existing --out is refused (exit 1, exact message, untouched); --overwrite replaces it whole")
    func existingOutput() throws {
        let w = try Workspace()
        try w.ingestAll()
        try FileManager.default.createDirectory(atPath: w.file("out"), withIntermediateDirectories: false)
        try w.write("out/old.txt", Array("old".utf8))
        let args = ["export", "index.sqlite", "--format", "raw", "--out", "out", "--layout", "packed"]
        try expectFailure(
            args, in: w.path, message: "'out' already exists; pass --overwrite to replace it, or choose another --out")
        #expect(try FileManager.default.contentsOfDirectory(atPath: w.file("out")) == ["old.txt"])
        try expectRun(args + ["--overwrite", "--quiet"], in: w.path, stdout: "", stderr: "")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: w.file("out")).sorted() == [
                "jpg.bin", "jpg.offsets.npy", "json.bin", "json.offsets.npy", "keys.txt",
            ])
        #expect(try w.listing() == (w.shards.map(\.name) + ["index.sqlite", "index.sqlite-locations", "out"]).sorted())
    }

    @Test("unsafe member names: exit 1, the exact list, nothing at --out or outside")
    func unsafeNames() throws {
        let w = try Workspace(shards: 0)
        var tar = TarWriter(format: .ustar)
        tar.addFile("000001.jpg", [1])
        tar.addFile("../outside.jpg", [2])
        tar.addFile("/abs/x.jpg", [3])
        tar.finish()
        try tar.write(to: w.file("evil.tar"))
        try expectRun(["ingest", "index.sqlite", "evil.tar", "--quiet"], in: w.path)
        try expectFailure(
            ["export", "index.sqlite", "--format", "raw", "--out", "out"], in: w.path,
            message:
                "refusing to export 2 member names that cannot be written safely inside the output folder: '../outside.jpg' (has a '..' component, in 'evil.tar'), '/abs/x.jpg' (is absolute, in 'evil.tar'); nothing was written. Rename them in the shards, or export with --format hdf5"
        )
        #expect(try w.listing() == ["evil.tar", "index.sqlite", "index.sqlite-locations"])
        #expect(!FileManager.default.fileExists(atPath: w.path + "/../outside.jpg"))
    }

    @Test("an unknown split, two splits, a bad split name: exact errors")
    func badSplits() throws {
        let w = try Workspace()
        try w.ingestAll()
        try expectFailure(
            ["export", "index.sqlite", "--format", "raw", "--out", "out", "--split", "nope"], in: w.path,
            message: "no split named 'nope' (the index has no splits)")
        try expectRun(
            ["export", "index.sqlite", "--format", "raw", "--out", "out", "--split", "a", "--split", "b"], in: w.path,
            status: 64, stdout: "",
            stderr: "Error: Please give --format raw one --split at most; run one export per split.\n" + usage)
        #expect(try w.listing() == (w.shards.map(\.name) + ["index.sqlite", "index.sqlite-locations"]).sorted())
    }
}

/// Runs `shardstore ARGS`, expecting exit 0, nothing on stderr and stdout matching `stdout` (a
/// regular expression) as a whole.
@discardableResult
private func expectRunMatching(
    _ arguments: [String], in directory: String, stdout pattern: String,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> ProcessResult {
    let result = try expectRun(arguments, in: directory, stderr: "", sourceLocation: sourceLocation)
    #expect(wholeMatch(result.stdoutText, pattern), "stdout: \(result.stdoutText)", sourceLocation: sourceLocation)
    return result
}

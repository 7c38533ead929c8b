import Foundation
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Messages that misled: each says what is wrong, on one line, with advice that fits.
@Suite("shardstore: messages that say what is wrong")
struct MessagesCLITests {
    /// A workspace with `odd.tar`: keys holding a line break and an escape sequence, and a member
    /// `y..png` (key `y`, extension `.png`) beside `y.png` (extension `png`), ingested.
    static func oddWorkspace() throws -> Workspace {
        let w = try Workspace(shards: 0)
        var tar = TarWriter(format: .ustar)
        tar.addFile("a\nb.txt", Array("line".utf8))
        tar.addFile("c\u{1B}[2Jd.txt", Array("escape".utf8))
        tar.addFile("x.jpg", [1, 2, 3])
        tar.addFile("y..png", Array("dotted png".utf8))
        tar.addFile("y.png", Array("plain png".utf8))
        tar.finish()
        try tar.write(to: w.file("odd.tar"))
        try expectRun(["ingest", "index.sqlite", "odd.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        return w
    }

    @Test("a key holding a line break or an escape sequence is escaped: one error is one line")
    func keysEscaped() throws {
        let w = try Self.oddWorkspace()
        try expectFailure(
            ["get", "index.sqlite", "a\nb", "--ext", "png"], in: w.path,
            message: "sample 'a\\x0ab' has no member '.png' (members: .txt)")
        try expectFailure(
            ["get", "index.sqlite", "c\u{1B}[2Jd", "--ext", "png"], in: w.path,
            message: "sample 'c\\x1b[2Jd' has no member '.png' (members: .txt)")
        try expectFailure(
            ["get", "index.sqlite", "no\nsuch"], in: w.path,
            message: "no sample has key 'no\\x0asuch'; `shardstore ls INDEX` lists the keys")
        // The same key in two shards: the duplicate error of ingest.
        try FileManager.default.copyItem(atPath: w.file("odd.tar"), toPath: w.file("again.tar"))
        try expectFailure(
            ["ingest", "index.sqlite", "again.tar"], in: w.path,
            message:
                "duplicate member 'a\\x0ab.txt': first at 'odd.tar' offset 0, again at 'again.tar' offset 0; choose what to do with --on-duplicate first|last|keep (the index was not changed)"
        )
    }

    @Test(
        "a directory given as the index: say so, and what to pass",
        arguments: [
            ["info", "."], ["ls", "."], ["get", ".", "x"], ["cat", "."], ["split", ".", "list"], ["meta", ".", "list"],
            ["split", ".", "assign", "val", "--shards", "*"],
        ])
    func directoryAsIndex(arguments: [String]) throws {
        let w = try Workspace(shards: 1)
        try expectFailure(
            arguments, in: w.path,
            message: "'.' is a directory, not an index file; pass the index file's path, such as './index.sqlite'")
    }

    @Test("ingest into a directory: say so, and what to pass")
    func ingestIntoDirectory() throws {
        let w = try Workspace(shards: 1)
        try expectFailure(
            ["ingest", ".", "shard-*.tar"], in: w.path,
            message: "'.' is a directory, not an index file; pass the index file's path, such as './index.sqlite'")
        try expectFailure(
            ["ingest", w.path + "/", "shard-*.tar"], in: "/",
            message:
                "'\(w.path)/' is a directory, not an index file; pass the index file's path, such as '\(w.path)/index.sqlite'"
        )
        #expect(try w.listing() == ["shard-000000.tar"])
    }

    @Test("info on an empty or a too-short file: not a ShardStore index (not 'an older schema')")
    func emptyFile() throws {
        let w = try Workspace(shards: 0)
        for (name, bytes) in [("empty.sqlite", [UInt8]()), ("one.sqlite", [0x78])] {
            try w.write(name, bytes)
            try expectFailure(
                ["info", name], in: w.path,
                message:
                    "\(name) is not a ShardStore index: it holds no database (the file is empty, or too short to hold one); pass the index.sqlite that `shardstore ingest` wrote, or make an index there with `shardstore ingest \(name) SHARD...`"
            )
            #expect(try w.bytes(name) == bytes)
        }
    }

    @Test("a failed ingest into an existing 0-byte file leaves it as it was; a good one makes the index")
    func emptyFileIngest() throws {
        let w = try Workspace(shards: 1)
        try FileManager.default.copyItem(atPath: w.file("shard-000000.tar"), toPath: w.file("copy.tar"))
        try w.write("index.sqlite", [])
        let listing = try w.listing()
        // The same keys in two shards fail in the middle of the write.
        let failed = try CLI.run(["ingest", "index.sqlite", "shard-000000.tar", "copy.tar"], in: w.path)
        #expect(failed.status == 1)
        #expect(failed.stderrText.hasPrefix("shardstore: error: duplicate member '000000.jpg'"), "\(failed.stderrText)")
        #expect(try w.bytes("index.sqlite") == [], "the 0-byte file was written")
        #expect(try w.listing() == listing)
        try w.ingestAll()
        let info = try expectRun(["info", "index.sqlite", "--json"], in: w.path, stderr: "")
        #expect(int(try jsonObject(info.stdoutText)["samples"]) == 4)
    }

    @Test("an ingest with nothing to write succeeds on a read-only index, and says nothing changed")
    func readOnlyUnchanged() throws {
        let w = try Workspace(shards: 2)
        try w.ingestAll()
        let before = try w.bytes("index.sqlite")
        let result = try runReadOnly(["ingest", "index.sqlite", "shard-*.tar"], in: w)
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(
            wholeMatch(
                result.stdoutText,
                summaryPattern(
                    shards: 2, new: 0, changed: 0, unchanged: 2, samples: 8, newSamples: 0, members: 0, bytes: 0)),
            "\(result.stdoutText)")
        #expect(
            result.stderrText
                == "note: nothing changed (every shard is as indexed), so the read-only index was not written\n")
        #expect(try w.bytes("index.sqlite") == before)
        // Something to write: refused, naming what would change.
        try makeShard(9).write(in: w.path)
        let refused = try runReadOnly(["ingest", "index.sqlite", "shard-*.tar"], in: w)
        #expect(refused.status == 1)
        #expect(
            refused.stderrText
                == "shardstore: error: index 'index.sqlite' is read-only (this process cannot write it or its folder) and this ingest would change it: 1 shard is new or changed; make the index and its folder writable and run the ingest again (the index was not changed)\n"
        )
        #expect(try w.bytes("index.sqlite") == before)
    }

    @Test("a GNU long name over 64 MiB: say the name is too long, not 'invalid numeric size field'")
    func longNameTooLong() throws {
        let w = try Workspace(shards: 0)
        let size: Int64 = 100 << 20
        let header = TarWriter.header(
            name: Array("././@LongLink".utf8), typeflag: UInt8(ascii: "L"), size: size, format: .gnu)
        // A sparse file: the header, then 100 MiB of long name that takes no disk space.
        _ = FileManager.default.createFile(atPath: w.file("big.tar"), contents: Data(header))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: w.file("big.tar")))
        try handle.truncate(atOffset: UInt64(512 + size + 1024))
        try handle.close()
        try expectFailure(
            ["ingest", "index.sqlite", "big.tar"], in: w.path,
            message:
                "shard 'big.tar': the GNU long name at offset 0 is 104857600 bytes, over the 64 MiB (67108864 bytes) this reader accepts for a member name; re-fetch the shard or leave it out of the ingest (no index was created)"
        )
    }

    @Test("--verbose: the summary, then the timings, each on its own line where stdout and stderr meet")
    func verboseLines() throws {
        let w = try Workspace(shards: 1)
        let executable = try CLI.executable.get()
        let result = try runProcess(
            "sh", ["-c", "exec \"$0\" ingest index.sqlite shard-000000.tar --verbose 2>&1", executable],
            currentDirectory: w.path)
        #expect(result.status == 0)
        let shard = w.shards[0]
        let summary = summaryPattern(
            shards: 1, new: 1, changed: 0, unchanged: 0, samples: 4, newSamples: 4, members: 8,
            bytes: shard.bytes.count)
        #expect(
            wholeMatch(result.stdoutText, summary + #"phases: stat [^\n]* s for scans\n"#), "\(result.stdoutText)")
    }

    @Test("bench --help names the peer tools, not a folder users do not have")
    func benchHelp() throws {
        let result = try expectRun(["bench", "--help"], in: "/", stderr: "")
        let text = result.stdoutText.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(!text.contains("../shared"), "\(text)")
        #expect(
            text.contains(
                "as the peer readers ShardStore is measured against do (webdataset, wids, ratarmountcore, and a C pread/mmap loop over the tars), so the work and the checksum are the same; tools/bench in a ShardStore checkout runs them side by side."
            ), "\(text)")
        #expect(
            text.contains(
                "--indices FILE positions from a file of little-endian int64 (tools/bench writes one and hands it to every peer)"
            ), "\(text)")
    }

    @Test(
        "--ext .png selects the member whose extension is '.png' (y..png); --ext png and --ext .JPG as before",
        arguments: ["table", "file", "statements"])
    func dottedExtension(lookup: String) throws {
        let w = try Self.oddWorkspace()
        try expectRun(["get", "index.sqlite", "y", "--ext", ".png"], in: w.path, stdout: "dotted png", stderr: "")
        try expectRun(["get", "index.sqlite", "y", "--ext", "png"], in: w.path, stdout: "plain png", stderr: "")
        try expectRun(["get", "index.sqlite", "x", "--ext", ".JPG"], in: w.path, stdout: "\u{1}\u{2}\u{3}", stderr: "")
        try expectRun(
            ["cat", "index.sqlite", "--ext", ".png", "--lookup", lookup], in: w.path, stdout: "dotted png", stderr: "")
        try expectRun(
            ["cat", "index.sqlite", "--ext", "png", "--lookup", lookup], in: w.path, stdout: "plain png", stderr: "")
        try expectRun(
            ["cat", "index.sqlite", "--ext", ".jpg", "--lookup", lookup], in: w.path, stdout: "\u{1}\u{2}\u{3}",
            stderr: "")
        let bench = try expectRun(
            ["bench", "index.sqlite", "--ext", ".png", "--sequential", "--json", "--lookup", lookup], in: w.path,
            stderr: "")
        #expect(int(try jsonObject(bench.stdoutText)["bytes"]) == "dotted png".utf8.count)
        try expectRun(
            ["export", "index.sqlite", "--format", "raw", "--ext", ".png", "--out", "out-\(lookup)", "--json"],
            in: w.path, stderr: "")
        #expect(try FileManager.default.contentsOfDirectory(atPath: w.file("out-\(lookup)")) == ["y..png"])
        #expect(try w.bytes("out-\(lookup)/y..png") == Array("dotted png".utf8))
    }

    @Test("a split name an HDF5 file cannot hold: advice about splits, not about --ext")
    func hdf5SplitName() throws {
        let w = try Workspace(shards: 2)
        try w.ingestAll()
        try w.write("a.keys", Array("000000\n".utf8))
        try w.write("b.keys", Array("000100\n".utf8))
        try expectRun(["split", "index.sqlite", "assign", "a/b", "--keys", "a.keys"], in: w.path, stderr: "")
        try expectRun(["split", "index.sqlite", "assign", "val", "--keys", "b.keys"], in: w.path, stderr: "")
        try expectFailure(
            ["export", "index.sqlite", "--format", "hdf5", "--split", "a/b", "--split", "val", "--out", "x.h5"],
            in: w.path,
            message:
                "cannot lay out the HDF5 file: the split name 'a/b' cannot name an HDF5 dataset in /splits; export such a split on its own (a single --split writes no /splits group), or assign its samples to a split with a plain name (`shardstore split INDEX assign NAME ...`)"
        )
        #expect(!FileManager.default.fileExists(atPath: w.file("x.h5")))
    }
}

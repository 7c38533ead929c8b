import Foundation
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Writes that must not escape or destroy: `get -o` over the index's own files or through a
/// planted link, an HDF5 export that runs out of room, and impossible numeric options.
@Suite("shardstore: writes that escape or destroy", .serialized)
struct WriteSafetyCLITests {
    /// Runs `shardstore ARGS` through `/bin/sh -c SCRIPT` in `directory`: the script runs first,
    /// then `exec`s the binary (same process id: `$$` in the script is the command's pid).
    static func runThroughShell(_ script: String, _ arguments: [String], in directory: String) throws
        -> ProcessResult
    {
        try runProcess(
            "/bin/sh", ["-c", script + "; exec \"$0\" \"$@\"", try CLI.executable.get()] + arguments,
            currentDirectory: directory)
    }

    @Test("get -o refuses the index, its journal, its location file and its shards, by any spelling")
    func getRefusesIndexFiles() throws {
        let w = try Workspace()
        try w.ingestAll()
        try FileManager.default.createDirectory(atPath: w.file("sub"), withIntermediateDirectories: false)
        #expect(symlink(w.path, w.file("sub/up")) == 0)
        let names = try w.listing()
        let before = try names.filter { $0 != "sub" }.map { ($0, try w.bytes($0)) }
        let cases: [(output: String, role: String, input: String)] = [
            ("index.sqlite", "the index", "index.sqlite"),
            ("./sub/../index.sqlite", "the index", "index.sqlite"),
            ("sub/up/index.sqlite", "the index", "index.sqlite"),
            ("index.sqlite-journal", "the index's journal", "index.sqlite-journal"),
            ("index.sqlite-locations", "the index's location file", "index.sqlite-locations"),
            ("shard-000001.tar", "a shard of the index", w.path + "/shard-000001.tar"),
            (w.path + "/shard-000002.tar", "a shard of the index", w.path + "/shard-000002.tar"),
        ]
        for c in cases {
            try expectFailure(
                ["get", "index.sqlite", "000000", "--ext", "jpg", "-o", c.output], in: w.path,
                message: "refusing to write '\(c.output)': it is \(c.role) ('\(c.input)'); choose another -o path")
        }
        // Nothing changed, nothing was added (no journal, no temporary).
        #expect(try w.listing() == names)
        #expect(try before.allSatisfy { try w.bytes($0.0) == $0.1 })
        // Another name works and writes exactly the member.
        try expectRun(
            ["get", "index.sqlite", "000000", "--ext", "jpg", "-o", "x.jpg"], in: w.path, stdout: "", stderr: "")
        #expect(try w.bytes("x.jpg") == w.shards[0].samples[0].members[0].data)
        #expect(try w.listing() == names + ["x.jpg"])
    }

    @Test("get -o never follows a link planted at a temporary name it used to use")
    func getIgnoresPlantedLinks() throws {
        let w = try Workspace()
        try w.ingestAll()
        try w.write("victim", Array("victim's bytes".utf8))
        // The names the old code used (`.NAME.partial-PID`, with PID the command's, known
        // here since the shell execs it) and the new prefix without its random part.
        let result = try Self.runThroughShell(
            "ln -s victim .x.jpg.partial-$$ && ln -s victim .x.jpg.shardstore-partial-$$",
            ["get", "index.sqlite", "000001", "--ext", "jpg", "-o", "x.jpg"], in: w.path)
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stderrText == "")
        #expect(try w.bytes("victim") == Array("victim's bytes".utf8))
        #expect(try w.bytes("x.jpg") == w.shards[0].samples[1].members[0].data)
        var st = stat()
        #expect(lstat(w.file("x.jpg"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG, "x.jpg is not a regular file")
    }

    @Test(
        "an export past the file size limit: exit 1, one line, nothing left (no SIGSEGV in libhdf5)",
        arguments: [
            ["--format", "hdf5", "--compression", "gzip"], ["--format", "hdf5", "--compression", "none"],
            ["--format", "raw", "--layout", "files"], ["--format", "raw", "--layout", "packed"],
        ])
    func exportPastFileSizeLimit(options: [String]) throws {
        let (w, _) = try ExportHDF5CLITests.workspace(samples: 16, elements: 65536)
        let before = try w.listing()
        // 4 MB of noise (256 kB a member) into files limited to 200 blocks (100 or 200 kB);
        // SIGXFSZ ignored, so the write fails with EFBIG as on a full disk with ENOSPC.
        let result = try Self.runThroughShell(
            "ulimit -f 200 && trap '' XFSZ", ["export", "index.sqlite", "--out", "out"] + options, in: w.path)
        #expect(result.status == 1)
        #expect(result.stdoutText == "")
        #expect(
            result.stderrText
                == "shardstore: error: cannot write 'out': the file would exceed the file size limit (File too large); raise the limit (`ulimit -f`) or export less (--split, --ext); nothing was written\n"
        )
        #expect(try w.listing() == before, "files left behind")
    }

    @Test(
        "an export to a full disk (a 1 MB tmpfs, as root): exit 1, one line, nothing left",
        .enabled(if: getuid() == 0),
        arguments: [
            ["--format", "hdf5", "--compression", "gzip"], ["--format", "hdf5", "--compression", "none"],
            ["--format", "raw", "--layout", "files"], ["--format", "raw", "--layout", "packed"],
        ])
    func exportToFullDisk(options: [String]) throws {
        let (w, _) = try ExportHDF5CLITests.workspace(samples: 16, elements: 65536)
        let mountPoint = w.file("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        let mounted = try runProcess("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint])
        guard mounted.status == 0 else { return }  // a container without mount rights: the test above holds
        defer { _ = try? runProcess("umount", [mountPoint]) }
        let result = try CLI.run(
            ["export", "index.sqlite", "--out", "small/out"] + options, in: w.path)
        #expect(result.status == 1)
        #expect(
            result.stderrText
                == "shardstore: error: cannot write 'small/out': the disk is full (No space left on device); free some space or choose another --out, then run the export again; nothing was written\n"
        )
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPoint) == [], "files left behind")
    }

    @Test("impossible counts for bench and ingest are argument errors (exit 64), not allocations")
    func impossibleCounts() throws {
        let w = try Workspace()
        try w.ingestAll()
        let bench = try expectRun(
            ["bench", "index.sqlite", "--random", "99999999999999"], in: w.path, status: 64, stdout: "")
        #expect(
            bench.stderrText.hasPrefix(
                "Error: Please give --random at most 100000000 (the positions are drawn up front, 8 bytes each), got 99999999999999; run bench several times for more.\n"
            ), "\(bench.stderrText)")
        let threads = try expectRun(
            ["bench", "index.sqlite", "--sequential", "--threads", "99999999999"], in: w.path, status: 64, stdout: "")
        #expect(threads.stderrText.hasPrefix("Error: Please give --threads at most 1024, got 99999999999.\n"))
        let jobs = try expectRun(
            ["ingest", "index.sqlite", "shard-*.tar", "--jobs", "9223372036854775807"], in: w.path, status: 64,
            stdout: "")
        #expect(jobs.stderrText.hasPrefix("Error: Please give --jobs at most 1024, got 9223372036854775807.\n"))
        // The largest allowed values still run.
        try expectRun(["bench", "index.sqlite", "--sequential", "--threads", "1024", "--json"], in: w.path, stderr: "")
    }
}

import Foundation
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two ustar shards of the same size and modification time, ingested with the CLI.
private struct TwinShards {
    let directory: TemporaryDirectory
    let path: String

    init() throws {
        directory = try TemporaryDirectory()
        path = try realPath(directory.path)
        for (name, key, fill) in [("a.tar", "a", UInt8(0x41)), ("b.tar", "b", UInt8(0x42))] {
            var tar = TarWriter(format: .ustar)
            tar.addFile("\(key)000.jpg", [UInt8](repeating: fill, count: 1024))
            tar.addFile("\(key)000.cls", [fill])
            tar.addFile("\(key)001.jpg", [UInt8](repeating: fill, count: 700))
            tar.addFile("\(key)001.cls", [fill])
            tar.finish()
            try tar.write(to: path + "/" + name)
            var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, path + "/" + name, &times, 0) == 0)
        }
        try expectRun(["ingest", "index.sqlite", "a.tar", "b.tar", "--quiet"], in: path)
    }

    /// Swaps the two shards; renames keep sizes and times.
    func swap() {
        #expect(rename(path + "/a.tar", path + "/t.tar") == 0)
        #expect(rename(path + "/b.tar", path + "/a.tar") == 0)
        #expect(rename(path + "/t.tar", path + "/b.tar") == 0)
    }

    func sql(_ statement: String) throws {
        let result = try runProcess("sqlite3", [path + "/index.sqlite", statement])
        #expect(result.status == 0, "\(result.stderrText)")
        _ = unlink(path + "/index.sqlite-locations")
    }

    /// The error for the first member of `shard` after the swap.
    func swapped(_ shard: String) -> String {
        let (found, expected) = shard == "a.tar" ? ("b000", "a000") : ("a000", "b000")
        return
            "shard '\(path)/\(shard)' at byte offset 0: the header there names '\(found).jpg', the index expects '\(expected).jpg' (key '\(expected)', .jpg); the shard changed since ingest or the index is damaged: run `shardstore ingest` again into a new index"
    }
}

private func realPath(_ path: String) throws -> String {
    guard let resolved = realpath(path, nil) else { throw CocoaError(.fileNoSuchFile) }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// The reading commands, each of which reads sample a000 first (strategies that read in a fixed
/// order; `memory` preloads both shards in parallel).
private let readingCommands: [[String]] = [
    ["get", "index.sqlite", "a000", "--ext", "jpg"],
    ["get", "index.sqlite", "--index", "0", "--ext", "jpg", "-o", "out.jpg"],
    ["cat", "index.sqlite", "--strategy", "mmap"],
    ["cat", "index.sqlite", "--strategy", "pread", "--lookup", "statements"],
    ["cat", "index.sqlite", "--strategy", "pread", "--lookup", "file"],
    ["bench", "index.sqlite", "--sequential", "--strategy", "pread"],
    ["bench", "index.sqlite", "--indices", "zero.bin", "--strategy", "mmap", "--lookup", "table"],
    ["export", "index.sqlite", "--format", "raw", "--out", "raw-out", "--strategy", "pread"],
    ["export", "index.sqlite", "--format", "raw", "--out", "raw-out", "--strategy", "mmap", "--layout", "packed"],
    ["export", "index.sqlite", "--format", "hdf5", "--out", "out.h5", "--strategy", "pread"],
    ["export", "index.sqlite", "--format", "hdf5", "--out", "out.h5", "--strategy", "mmap"],
]

@Suite("CLI: every read checks the member's own header; damaged index rows are refused")
struct HeaderCheckCLITests {
    @Test("shards swapped keeping size and time: get, cat, bench and export refuse them, exit 1, nothing written")
    func swappedShards() throws {
        let t = try TwinShards()
        try Data(count: 8).write(to: URL(fileURLWithPath: t.path + "/zero.bin"))
        t.swap()
        for command in readingCommands {
            try expectFailure(command, in: t.path, message: t.swapped("a.tar"))
            #expect(!FileManager.default.fileExists(atPath: t.path + "/out.jpg"))
            #expect(!FileManager.default.fileExists(atPath: t.path + "/raw-out"))
            #expect(!FileManager.default.fileExists(atPath: t.path + "/out.h5"))
        }
        // memory: both shards are preloaded in parallel, either may be named.
        let result = try CLI.run(["cat", "index.sqlite", "--strategy", "memory"], in: t.path)
        #expect(result.status == 1 && result.stdoutText == "")
        #expect(
            result.stderrText == "shardstore: error: \(t.swapped("a.tar"))\n"
                || result.stderrText == "shardstore: error: \(t.swapped("b.tar"))\n")
        // Without the check (bench only, to measure its cost) the swapped bytes are read.
        try expectRun(
            ["bench", "index.sqlite", "--sequential", "--strategy", "pread", "--no-header-check"], in: t.path)
    }

    @Test("members.data_offset moved by one block: refused by get, cat, bench and export")
    func shiftedDataOffset() throws {
        let t = try TwinShards()
        try Data(count: 8).write(to: URL(fileURLWithPath: t.path + "/zero.bin"))
        try t.sql("UPDATE members SET data_offset = data_offset + 512 WHERE sample_id = 0 AND ext = 'jpg'")
        let message =
            "shard '\(t.path)/a.tar' at byte offset 512: no valid tar header precedes the member (checksum field not a number, computed \(0x41 * 504 + 256)) (key 'a000', .jpg); the shard changed since ingest or the index is damaged: run `shardstore ingest` again into a new index"
        for command in readingCommands + [["cat", "index.sqlite", "--strategy", "memory"]] {
            try expectFailure(command, in: t.path, message: message)
        }
    }

    @Test("a negative length: a clear error and exit 1, never a trap (export --format raw trapped)")
    func negativeLength() throws {
        let t = try TwinShards()
        try Data(count: 8).write(to: URL(fileURLWithPath: t.path + "/zero.bin"))
        try t.sql("UPDATE members SET length = -5 WHERE sample_id = 0 AND ext = 'jpg'")
        let message =
            "index 'index.sqlite' has a damaged member row (sample 0, key 'a000', .jpg): length -5 is negative; run `shardstore ingest` again into a new index"
        // The location file (what pread reads positions from by default) is checked by its own
        // tests; here the table and statement lookups, which load the row from the index.
        let commands =
            readingCommands.filter { !$0.contains("file") && (!$0.contains("pread") || $0.contains("--lookup")) }
            + [
                ["cat", "index.sqlite", "--strategy", "memory"],
                ["cat", "index.sqlite", "--strategy", "pread", "--lookup", "table"],
                ["bench", "index.sqlite", "--random", "3", "--strategy", "pread", "--lookup", "statements"],
                ["export", "index.sqlite", "--format", "raw", "--out", "raw-out"],
                ["export", "index.sqlite", "--format", "hdf5", "--out", "out.h5"],
            ]
        for command in commands {
            try expectFailure(command, in: t.path, message: message)
        }
    }

    @Test("a damaged shards.member_count does not trap an export's reading plan (it overflowed)")
    func hugeMemberCount() throws {
        let t = try TwinShards()
        try t.sql("UPDATE shards SET member_count = 9223372036854775807")
        try expectRun(
            ["export", "index.sqlite", "--format", "raw", "--out", "raw-out", "--ext", "jpg", "--quiet"], in: t.path)
        #expect(
            FileManager.default.contents(atPath: t.path + "/raw-out/a000.jpg") == Data(repeating: 0x41, count: 1024))
    }

    @Test("bench --no-header-check says what it is for")
    func benchHelp() throws {
        let result = try expectRun(["bench", "--help"], in: "/")
        #expect(result.stdoutText.contains("--no-header-check"))
        #expect(result.stdoutText.contains("only to measure what the check costs"))
    }
}

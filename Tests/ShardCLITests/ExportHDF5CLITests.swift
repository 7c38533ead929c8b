import Foundation
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `shardstore export --format hdf5`: the summary, JSON, errors and exit codes, and Ctrl-C.
@Suite("shardstore export --format hdf5", .serialized)
struct ExportHDF5CLITests {
    /// An NPY version 1.0 member of `descr` and `shape` holding `data`.
    static func npyMember(_ descr: String, shape: [Int], data: [UInt8]) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        header += [UInt8](repeating: 0x20, count: (64 - (10 + header.count + 1) % 64) % 64) + [0x0A]
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header
            + data
    }

    /// Pseudo-random bytes, a word at a time (fast enough for tens of megabytes).
    static func noise(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: count - 7, by: 8) {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                raw.storeBytes(of: state, toByteOffset: i, as: UInt64.self)
            }
        }
        return out
    }

    /// A workspace with `shard-0.tar` of `samples` samples (`KEY.npy`: int32 (`elements`,),
    /// `KEY.cls`), ingested into `index.sqlite`, and the `.npy` data offsets by key.
    static func workspace(samples: Int = 4, elements: Int = 3, badKey: String? = nil) throws -> (
        Workspace, offsets: [String: Int64]
    ) {
        let w = try Workspace(shards: 0)
        var tar = TarWriter(format: .ustar)
        var offsets: [String: Int64] = [:]
        for i in 0..<samples {
            let key = key6(i)
            let member =
                key == badKey
                ? npyMember("<i4", shape: [elements + 1], data: noise(elements * 4, seed: UInt64(i + 1)))
                : npyMember("<i4", shape: [elements], data: noise(elements * 4, seed: UInt64(i + 1)))
            offsets[key] = tar.addFile("\(key).npy", member).dataOffset
            tar.addFile("\(key).cls", Array("\(i % 3)".utf8))
        }
        tar.finish()
        try tar.write(to: w.file("shard-0.tar"))
        try expectRun(["ingest", "index.sqlite", "shard-0.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        return (w, offsets)
    }

    @Test("success: the summary line, and --json with every field")
    func success() throws {
        let (w, _) = try Self.workspace()
        let result = try expectRun(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "out.h5"], in: w.path, stderr: "")
        let size = try #require(try w.bytes("out.h5")).count
        // 4 .npy members (a 128-byte header and 12 bytes of data) and 4 one-byte labels.
        let npyBytes = Self.npyMember("<i4", shape: [3], data: Array(repeating: 0, count: 12)).count
        #expect(npyBytes == 140)
        let head =
            "exported 4 samples (8 members, \(decimalBytes(4 * npyBytes + 4)) read) to hdf5 'out.h5' (\(decimalBytes(size)))"
        #expect(wholeMatch(result.stdoutText, literal(head) + #" in \d+\.\d\d s\n"#), "\(result.stdoutText)")

        let json = try expectRun(
            [
                "export", "index.sqlite", "--format", "hdf5", "--out", "out.h5", "--ext", "npy", "--compression",
                "none",
                "--overwrite", "--json",
            ], in: w.path, stderr: "")
        let o = try jsonObject(json.stdoutText)
        #expect(
            Set(o.keys) == [
                "format", "out", "samples", "members", "bytes_read", "bytes_written", "entries", "strategy", "reason",
                "seconds",
            ])
        #expect(o["format"] as? String == "hdf5" && o["out"] as? String == "out.h5")
        #expect(int(o["samples"]) == 4 && int(o["members"]) == 4 && int(o["bytes_read"]) == 4 * npyBytes)
        #expect(int(o["bytes_written"]) == (try w.bytes("out.h5"))?.count)
        #expect(o["entries"] as? [String] == ["keys", "npy"])
        #expect(o["strategy"] as? String == "pread")
        #expect(
            o["reason"] as? String
                == "pread: the export reads only the .npy members, so it reads just those rather than mapping whole shards"
        )
        #expect((o["seconds"] as? Double).map { $0 >= 0 } == true)
        #expect(try w.listing() == ["index.sqlite", "index.sqlite-locations", "out.h5", "shard-0.tar"])

        // --quiet prints nothing; --strategy pread is reported as requested.
        try expectRun(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "q.h5", "--quiet", "--strategy", "pread"],
            in: w.path,
            stdout: "", stderr: "")
        let pread = try expectRun(
            [
                "export", "index.sqlite", "--format", "hdf5", "--out", "q.h5", "--overwrite", "--strategy", "pread",
                "--json",
            ],
            in: w.path, stderr: "")
        let p = try jsonObject(pread.stdoutText)
        #expect(p["strategy"] as? String == "pread" && p["reason"] as? String == "requested")
    }

    @Test("errors: an existing output, --level 0, an unknown split or extension, a bad .npy member")
    func errors() throws {
        let (w, offsets) = try Self.workspace(badKey: key6(2))
        try w.write("out.h5", Array("old".utf8))
        try expectFailure(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "out.h5"], in: w.path,
            message: "'out.h5' already exists; pass --overwrite to replace it, or choose another --out")
        #expect(try w.bytes("out.h5") == Array("old".utf8))

        let usage =
            "Usage: shardstore export [<options>] <index> --format <format> --out <path>\n  See 'shardstore export --help' for more information.\n"
        try expectRun(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "new.h5", "--level", "0"], in: w.path, status: 64,
            stdout: "", stderr: "Error: Please give --level a number from 1 to 9.\n" + usage)
        try expectRun(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "new.h5", "--split", "a", "--split", "a"],
            in: w.path, status: 64, stdout: "", stderr: "Error: Please name each --split once.\n" + usage)

        try expectFailure(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "new.h5", "--split", "train"], in: w.path,
            message: "no split named 'train' (the index has no splits)")
        try expectFailure(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "new.h5", "--ext", "jpg"], in: w.path,
            message: "no member has extension '.jpg' (extensions: .cls, .npy)")
        try expectFailure(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "new.h5"], in: w.path,
            message:
                "cannot decode member '000002.npy' of 'shard-0.tar' at byte offset \(offsets[key6(2)]!): the data is 12 bytes, but shape (4,) of '<i4' needs 16; fix or drop the member, or leave the extension out with --ext"
        )
        try expectFailure(
            ["export", "missing.sqlite", "--format", "hdf5", "--out", "new.h5"], in: w.path,
            message: "index 'missing.sqlite' does not exist; create it with `shardstore ingest missing.sqlite SHARD...`"
        )
        // Leaving the bad member out works.
        try expectRun(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "new.h5", "--ext", "cls", "--quiet"], in: w.path,
            stdout: "", stderr: "")
        #expect(try w.listing() == ["index.sqlite", "index.sqlite-locations", "new.h5", "out.h5", "shard-0.tar"])
    }

    /// Seconds a full export of the big workspace takes here (measured once).
    static let big: (workspace: Workspace, seconds: Double)? = {
        // 160 samples of 256 KiB of noise, deflated at level 9: slow enough to interrupt.
        guard let (w, _) = try? workspace(samples: 160, elements: 65536) else { return nil }
        let start = Date()
        let result = try? CLI.run(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "full.h5", "--level", "9", "--quiet"], in: w.path)
        guard result?.status == 0 else { return nil }
        return (w, Date().timeIntervalSince(start))
    }()

    @Test(
        "Ctrl-C during an export: exit 130 and no file (an old one kept), or exit 0 and a complete file",
        arguments: [0.3, 0.7])
    func interrupt(atFraction fraction: Double) throws {
        let (w, seconds) = try #require(Self.big)
        let out = w.file("out.h5")
        try w.write("out.h5", Array("old".utf8))
        let outcome = try InterruptCLITests.runAndSignal(
            ["export", "index.sqlite", "--format", "hdf5", "--out", out, "--level", "9", "--overwrite"], in: w,
            after: max(0.1, fraction * seconds), signal: SIGINT)
        #expect(outcome.exitedNormally, "killed by signal \(outcome.status); stderr: \(outcome.stderr.prefix(300))")
        if outcome.status == 130 {
            #expect(outcome.stdout == "")
            #expect(outcome.stderr == "shardstore: error: export interrupted; nothing was written to '\(out)'\n")
            #expect(try w.bytes("out.h5") == Array("old".utf8))
        } else {
            #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
            let magic: [UInt8] = [0x89] + Array("HDF\r\n".utf8) + [0x1A, 0x0A]
            #expect(try w.bytes("out.h5").map { Array($0.prefix(8)) } == magic)
            #expect(outcome.stdout.hasPrefix("exported 160 samples"), "\(outcome.stdout)")
        }
        #expect(try w.listing().filter { $0.contains("partial") } == [], "partial files left behind")
    }

    @Test(
        "SIGTERM and SIGHUP during an export act as Ctrl-C: exit 128 + the signal, no file (the old one kept)",
        arguments: [SIGTERM, SIGHUP])
    func terminate(signal: Int32) throws {
        let (w, seconds) = try #require(Self.big)
        let out = w.file("out.h5")
        try w.write("out.h5", Array("old".utf8))
        let outcome = try InterruptCLITests.runAndSignal(
            ["export", "index.sqlite", "--format", "hdf5", "--out", out, "--level", "9", "--overwrite"], in: w,
            after: max(0.1, 0.5 * seconds), signal: signal)
        #expect(outcome.exitedNormally, "killed by signal \(outcome.status); stderr: \(outcome.stderr.prefix(300))")
        #expect(outcome.status == 128 + signal, "stderr: \(outcome.stderr)")
        #expect(outcome.stdout == "")
        #expect(outcome.stderr == "shardstore: error: export interrupted; nothing was written to '\(out)'\n")
        #expect(try w.bytes("out.h5") == Array("old".utf8))
        #expect(try w.listing().filter { $0.contains("partial") } == [], "partial files left behind")
    }

    @Test("after kill -9 of an export, the next export to the same destination removes its temporary file")
    func killedExportCleanedUp() throws {
        let (w, seconds) = try #require(Self.big)
        let out = w.file("out.h5")
        let outcome = try InterruptCLITests.runAndSignal(
            ["export", "index.sqlite", "--format", "hdf5", "--out", out, "--level", "9", "--overwrite"], in: w,
            after: max(0.1, 0.5 * seconds), signal: SIGKILL,
            when: {
                // Killed once the export has written part of its temporary file: mid-way, whatever the load.
                ((try? w.listing()) ?? []).contains { $0.hasPrefix(".out.h5.shardstore-partial-") }
            })
        #expect(!outcome.exitedNormally && outcome.status == SIGKILL, "the export finished before the signal")
        let left = try w.listing().filter { $0.hasPrefix(".out.h5.shardstore-partial-") }
        #expect(left.count == 1, "\(left)")
        try expectRun(
            ["export", "index.sqlite", "--format", "hdf5", "--out", "out.h5", "--overwrite", "--quiet"], in: w.path,
            stdout: "", stderr: "")
        #expect(try w.listing().filter { $0.contains("partial") } == [], "the killed export's temporary is still there")
    }
}

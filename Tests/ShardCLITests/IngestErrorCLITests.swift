import Foundation
import ShardTestSupport
import Testing

/// Broken inputs: `ingest` exits 1 with one `shardstore: error:` line that names the shard (and the
/// offset) and leaves the index as it was.
@Suite("shardstore ingest: corrupt and missing shards")
struct IngestErrorCLITests {
    enum Case: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case truncatedMember, truncatedHeader, badChecksum, notATar, emptyFile, missingShard, gzipMagic
        case globMatchingNothing, braceRangeMissingFile

        var testDescription: String { rawValue }
    }

    /// Two good samples (keys 000500, 000501), four members: headers at 0, 1024 + jpg padding...
    static func goodBadShard() -> FixtureShard { makeShard(5, samples: 2) }

    /// The unsigned sum of a header block with its checksum field as spaces, and the stored value.
    static func checksums(_ block: ArraySlice<UInt8>) -> (stored: Int, computed: Int) {
        let b = Array(block)
        var sum = 0
        for (i, byte) in b.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int(byte) }
        let field = String(decoding: b[148..<156].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
        return (Int(field, radix: 8) ?? -1, sum)
    }

    /// Writes the case's files into `w` and returns the shard arguments and the expected message
    /// (without `shardstore: error: ` and the final `(the index was not changed)`), or a pattern
    /// for the start of stderr when the message is checked loosely.
    static func prepare(_ c: Case, in w: Workspace) throws -> (arguments: [String], message: String?, pattern: String?)
    {
        let remedy = "; re-fetch the shard or leave it out of the ingest"
        var bad = goodBadShard().tar
        switch c {
        case .truncatedMember:
            let third = bad.entries[2]
            let cut = Int(third.dataOffset) + 100
            bad.truncate(to: cut)
            try bad.write(to: w.file("bad.tar"))
            let message =
                "shard 'bad.tar': truncated member at offset \(third.headerOffset): its data ends at \(third.dataOffset + third.size) but the file ends at \(cut)"
                + remedy
            return (["bad.tar"], message, nil)
        case .truncatedHeader:
            let third = bad.entries[2]
            let cut = Int(third.headerOffset) + 100
            bad.truncate(to: cut)
            try bad.write(to: w.file("bad.tar"))
            return (
                ["bad.tar"],
                "shard 'bad.tar': truncated tar header at offset \(third.headerOffset) (file ends at \(cut))" + remedy,
                nil
            )
        case .badChecksum:
            let third = Int(bad.entries[2].headerOffset)
            bad.corruptChecksum(ofBlockAt: third)
            try bad.write(to: w.file("bad.tar"))
            let (stored, computed) = checksums(bad.bytes[third..<(third + 512)])
            #expect(stored != computed)
            return (
                ["bad.tar"],
                "shard 'bad.tar': tar header checksum mismatch at offset \(third) (stored \(stored), computed \(computed))"
                    + remedy, nil
            )
        case .notATar:
            try w.write("bad.tar", Array(String(repeating: "this is a text file, not a tar archive\n", count: 40).utf8))
            return (["bad.tar"], "shard 'bad.tar': not a tar archive: no valid tar header at offset 0" + remedy, nil)
        case .emptyFile:
            try w.write("bad.tar", [])
            return (["bad.tar"], "shard 'bad.tar': empty file (0 bytes), not a tar archive" + remedy, nil)
        case .missingShard:
            // Names the path; should also say what to do, like the other messages do.
            return (
                ["missing.tar"], nil,
                literal("shardstore: error: shard 'missing.tar' does not exist") + "; [^\n]+"

            )
        case .gzipMagic:
            try w.write(
                "bad.tar.gz", [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03] + fixtureBytes(seed: 1, count: 600))
            // gzip magic and a header, then bytes that are no deflate stream: refused at the
            // compressed offset where inflate gave up.
            return (
                ["bad.tar.gz"],
                "shard 'bad.tar.gz': gzip data is corrupt at compressed byte 14 (invalid code lengths set); the file is damaged: fetch or compress it again",
                nil
            )
        case .globMatchingNothing:
            return (
                ["nothing-*.tar"], nil,
                literal("shardstore: error: no file matches 'nothing-*.tar'") + "; [^\n]+"
            )
        case .braceRangeMissingFile:
            // The workspace has shard-000000 to shard-000002.
            return (
                ["shard-{000001..000004}.tar"],
                "shard 'shard-000003.tar' (from 'shard-{000001..000004}.tar') does not exist; check the pattern's range",
                nil
            )
        }
    }

    @Test(
        "into an existing index: exit 1, one line naming the shard, the index's bytes unchanged",
        arguments: Case.allCases)
    func existingIndex(_ c: Case) throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-000000.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        let before = try #require(try w.bytes("index.sqlite"))
        let (arguments, message, pattern) = try Self.prepare(c, in: w)
        let listing = try w.listing()
        // A good new shard first, so the failure comes after rows were written.
        let result = try expectRun(
            ["ingest", "index.sqlite", "shard-000001.tar"] + arguments, in: w.path, status: 1, stdout: "")
        check(result.stderrText, message: message, pattern: pattern, suffix: " (the index was not changed)")
        #expect(try w.bytes("index.sqlite") == before, "the index file changed")
        #expect(try w.listing() == listing, "files were left behind")
        try expectRun(
            ["ls", "index.sqlite"], in: w.path,
            stdout: "0\t000000\t-\tjpg,json\n1\t000001\t-\tjpg,json\n2\t000002\t-\tjpg,json\n3\t000003\t-\tjpg,json\n")
    }

    @Test(
        "into a new index: exit 1, the same line ending '(no index was created)', and no index file",
        arguments: Case.allCases)
    func newIndex(_ c: Case) throws {
        let w = try Workspace()
        let (arguments, message, pattern) = try Self.prepare(c, in: w)
        let listing = try w.listing()
        let result = try expectRun(
            ["ingest", "index.sqlite", "shard-000001.tar"] + arguments, in: w.path, status: 1, stdout: "")
        check(result.stderrText, message: message, pattern: pattern, suffix: " (no index was created)")
        #expect(try w.listing() == listing, "an index or partial file was left behind")
        try expectFailure(
            ["info", "index.sqlite"], in: w.path,
            message: "index 'index.sqlite' does not exist; create it with `shardstore ingest index.sqlite SHARD...`")
    }

    func check(
        _ stderr: String, message: String?, pattern: String?, suffix: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        if let message {
            #expect(stderr == "shardstore: error: \(message)\(suffix)\n", sourceLocation: sourceLocation)
        }
        if let pattern {
            let pattern = pattern + literal(suffix + "\n")
            #expect(
                wholeMatch(stderr, pattern), "stderr \(stderr.debugDescription) does not match \(pattern)",
                sourceLocation: sourceLocation)
        }
        #expect(lines(stderr).count == 1, "one line on stderr", sourceLocation: sourceLocation)
        #expect(stderr.hasPrefix("shardstore: error: "), sourceLocation: sourceLocation)
    }

    @Test(
        "a corrupt shard early in a long list: the same error, not a crash",
        arguments: [
            (existing: false, jobs: nil), (existing: true, jobs: nil), (existing: false, jobs: 4),
            (existing: true, jobs: 1),
        ] as [(existing: Bool, jobs: Int?)])
    func corruptAmongMany(existing: Bool, jobs: Int?) throws {
        let w = try Workspace(shards: 20, samples: 3)
        if existing {
            try expectRun(
                ["ingest", "index.sqlite", "shard-000000.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        }
        let before = try w.bytes("index.sqlite")
        try w.write("shard-000004.tar", Array(String(repeating: "not a tar archive\n", count: 100).utf8))
        let listing = try w.listing()
        let suffix = existing ? " (the index was not changed)" : " (no index was created)"
        try expectRun(
            ["ingest", "index.sqlite", "shard-*.tar"] + (jobs.map { ["--jobs", String($0)] } ?? []), in: w.path,
            status: 1, stdout: "",
            stderr:
                "shardstore: error: shard 'shard-000004.tar': not a tar archive: no valid tar header at offset 0; re-fetch the shard or leave it out of the ingest\(suffix)\n"
        )
        #expect(try w.bytes("index.sqlite") == before)
        #expect(try w.listing() == listing, "files left behind (a journal?)")
        if existing {
            try expectRun(["info", "index.sqlite", "--json"], in: w.path, stderr: "")
        }
    }

    @Test("argument errors exit 64")
    func argumentErrors() throws {
        let w = try Workspace()
        let usage =
            "Usage: shardstore ingest [<options>] <index> <shards> ...\n  See 'shardstore ingest --help' for more information.\n"
        try expectRun(
            ["ingest", "index.sqlite"], in: w.path, status: 64, stdout: "",
            stderr:
                "Error: Missing expected argument '<shards> ...'\nHelp:  <shards>  Shard paths, globs or brace patterns; s3://bucket/key and http(s):// URLs too.\n"
                + usage)
        try expectRun(
            ["ingest", "index.sqlite", "shard-*.tar", "--jobs", "0"], in: w.path, status: 64, stdout: "",
            stderr: "Error: Please give --jobs a number of at least 1.\n" + usage)
        try expectRun(
            ["ingest", "index.sqlite", "shard-*.tar", "--split", ""], in: w.path, status: 64, stdout: "",
            stderr: "Error: Please give --split a non-empty name.\n" + usage)
        #expect(try w.bytes("index.sqlite") == nil)
    }
}

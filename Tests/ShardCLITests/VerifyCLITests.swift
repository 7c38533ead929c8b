import Foundation
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Changes `path`'s bytes with `change`, keeping its size and its modification time to the
/// nanosecond (as `cp -p` or `touch -r` would), so only its contents tell.
private func rewriteKeepingTime(_ path: String, _ change: (inout [UInt8]) -> Void) throws {
    var st = stat()
    #expect(stat(path, &st) == 0)
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let size = bytes.count
    change(&bytes)
    #expect(bytes.count == size)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    var times = [st.st_atim, st.st_mtim]
    #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
}

/// The regular expression of the summary line, seconds left open.
private func summary(members: Int, shards: Int, data: Bool, bytes: String, problems: Int) -> String {
    literal(
        "verified \(members) members in \(shards) shard\(shards == 1 ? "" : "s") (\(data ? "headers and data" : "headers")): "
            + "\(bytes) bytes read, \(problems) problem\(problems == 1 ? "" : "s"), ") + "[0-9]+\\.[0-9]{2} s\n"
}

@Suite("shardstore verify")
struct VerifyCLITests {
    @Test("a clean dataset: exit 0, the exact summary, nothing on stderr; --data too after ingest --checksums")
    func clean() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--checksums", "--quiet"], in: w.path, stderr: "")
        let headers = try expectRun(["verify", "index.sqlite"], in: w.path, stderr: "")
        #expect(
            wholeMatch(headers.stdoutText, summary(members: 24, shards: 3, data: false, bytes: "12,288", problems: 0)),
            "\(headers.stdoutText)")
        let total = w.shards.reduce(0) { $0 + $1.bytes.count }
        let data = try expectRun(["verify", "index.sqlite", "--data"], in: w.path, stderr: "")
        #expect(
            wholeMatch(
                data.stdoutText,
                summary(members: 24, shards: 3, data: true, bytes: grouped(total), problems: 0)),
            "\(data.stdoutText)")
        try expectRun(["verify", "index.sqlite", "--data", "--quiet"], in: w.path, stdout: "", stderr: "")
    }

    @Test("a flipped data byte: verify passes (headers are fine), verify --data exits 1 naming the member")
    func flippedDataByte() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--checksums", "--quiet"], in: w.path)
        let shard = w.shards[1]
        let sample = shard.samples[2]
        let offset = shard.dataOffset(of: sample.key, "jpg")!
        try rewriteKeepingTime(w.file(shard.name)) { $0[Int(offset) + 5] ^= 0x40 }
        try expectRun(["verify", "index.sqlite"], in: w.path, stderr: "")
        let jpg = sample.members[0].data
        var damaged = jpg
        damaged[5] ^= 0x40
        let result = try expectRun(["verify", "index.sqlite", "--data"], in: w.path, status: 1, stderr: "")
        let out = lines(result.stdoutText)
        #expect(out.count == 2)
        #expect(
            out.first
                == "shard '\(shard.name)' byte \(offset) key '\(sample.key)' ext 'jpg': data: the \(jpg.count) data bytes have CRC-32C \(hex(crc32c(damaged))), \(hex(crc32c(jpg))) recorded at ingest; the shard changed since ingest"
        )
        #expect(
            wholeMatch(
                (out.last ?? "") + "\n",
                summary(
                    members: 24, shards: 3, data: true, bytes: grouped(w.shards.reduce(0) { $0 + $1.bytes.count }),
                    problems: 1)))
    }

    @Test("a flipped header byte: exit 1, one line for that member")
    func flippedHeaderByte() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path)
        let shard = w.shards[0]
        let key = shard.samples[1].key
        let header = shard.dataOffset(of: key, "json")! - 512
        // The size field's last digit: the block's checksum no longer matches.
        try rewriteKeepingTime(w.file(shard.name)) { $0[Int(header) + 124 + 10] ^= 0x01 }
        let result = try expectRun(["verify", "index.sqlite"], in: w.path, status: 1, stderr: "")
        let out = lines(result.stdoutText)
        #expect(out.count == 2)
        #expect(
            out.first?.hasPrefix(
                "shard '\(shard.name)' byte \(header) key '\(key)' ext 'json': header: no valid tar header precedes the member (checksum field "
            ) == true, "\(out)")
        #expect(
            wholeMatch(
                (out.last ?? "") + "\n", summary(members: 24, shards: 3, data: false, bytes: "12,288", problems: 1)))
    }

    @Test("two same-size shards swapped with their mtimes kept: one line per member, exit 1")
    func swappedShards() throws {
        let dir = try TemporaryDirectory(prefix: "shardstore-cli")
        for (name, prefix) in [("x.tar", "a"), ("y.tar", "b")] {
            var tar = TarWriter(format: .ustar)
            tar.addFile("\(prefix)0.bin", [UInt8](repeating: 1, count: 1000))
            tar.addFile("\(prefix)1.bin", [UInt8](repeating: 2, count: 10))
            tar.finish()
            try tar.write(to: dir.path + "/" + name)
        }
        try expectRun(["ingest", "index.sqlite", "x.tar", "y.tar", "--quiet"], in: dir.path)
        let x = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.path + "/x.tar")))
        let y = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.path + "/y.tar")))
        try rewriteKeepingTime(dir.path + "/x.tar") { $0 = y }
        try rewriteKeepingTime(dir.path + "/y.tar") { $0 = x }
        let result = try expectRun(["verify", "index.sqlite"], in: dir.path, status: 1, stderr: "")
        let out = lines(result.stdoutText)
        #expect(
            Array(out.prefix(4)) == [
                "shard 'x.tar' byte 0 key 'a0' ext 'bin': header: the header there names 'b0.bin', the index expects 'a0.bin'",
                "shard 'x.tar' byte 1536 key 'a1' ext 'bin': header: the header there names 'b1.bin', the index expects 'a1.bin'",
                "shard 'y.tar' byte 0 key 'b0' ext 'bin': header: the header there names 'a0.bin', the index expects 'b0.bin'",
                "shard 'y.tar' byte 1536 key 'b1' ext 'bin': header: the header there names 'a1.bin', the index expects 'b1.bin'",
            ])
        #expect(out.count == 5)
        #expect(
            wholeMatch(
                (out.last ?? "") + "\n", summary(members: 4, shards: 2, data: false, bytes: "2,048", problems: 4)))
    }

    @Test("a damaged index row (data_offset moved by one block) is reported")
    func damagedRow() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path)
        let shard = w.shards[2]
        let key = shard.samples[0].key
        let offset = shard.dataOffset(of: key, "jpg")!
        let python = try runProcess(
            "python3",
            [
                "-c",
                "import sqlite3; c = sqlite3.connect('index.sqlite'); c.execute(\"UPDATE members SET data_offset = data_offset + 512 WHERE ext = 'jpg' AND sample_id = (SELECT id FROM samples WHERE key = '\(key)')\"); c.commit()",
            ], currentDirectory: w.path)
        #expect(python.status == 0, "\(python.stderrText)")
        let result = try expectRun(["verify", "index.sqlite"], in: w.path, status: 1, stderr: "")
        let out = lines(result.stdoutText)
        #expect(out.count == 2)
        #expect(
            out.first?.hasPrefix(
                "shard '\(shard.name)' byte \(offset) key '\(key)' ext 'jpg': header: no valid tar header precedes the member"
            ) == true, "\(out)")
    }

    @Test("--split checks only the split's members and the shards holding them")
    func split() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-000000.tar", "--split", "val", "--quiet"], in: w.path)
        try expectRun(["ingest", "index.sqlite", "shard-00000[12].tar", "--quiet"], in: w.path)
        let shard = w.shards[2]
        let header = shard.dataOffset(of: shard.samples[0].key, "jpg")! - 512
        try rewriteKeepingTime(w.file(shard.name)) { $0[Int(header) + 1] ^= 0x01 }
        let val = try expectRun(["verify", "index.sqlite", "--split", "val"], in: w.path, stderr: "")
        #expect(wholeMatch(val.stdoutText, summary(members: 8, shards: 1, data: false, bytes: "4,096", problems: 0)))
        try expectRun(["verify", "index.sqlite"], in: w.path, status: 1, stderr: "")
        try expectFailure(
            ["verify", "index.sqlite", "--split", "nope"], in: w.path,
            message: "no split named 'nope' (splits: val)")
    }

    @Test("--json: one object with the counts and each problem's fields")
    func json() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path)
        let clean = try expectRun(["verify", "index.sqlite", "--json"], in: w.path, stderr: "")
        let o = try jsonObject(clean.stdoutText)
        #expect(lines(clean.stdoutText).count == 1)
        #expect(o["index"] as? String == "index.sqlite" && o["split"] is NSNull && o["data"] as? Bool == false)
        #expect(int(o["shards"]) == 3 && int(o["members"]) == 24 && int(o["bytes_read"]) == 24 * 512)
        #expect(int(o["problem_count"]) == 0 && (o["problems"] as? [Any])?.count == 0 && o["clean"] as? Bool == true)
        #expect(o["seconds"] is NSNumber)

        let shard = w.shards[0]
        let key = shard.samples[3].key
        let header = shard.dataOffset(of: key, "jpg")! - 512
        try rewriteKeepingTime(w.file(shard.name)) { $0[Int(header) + 124 + 10] ^= 0x01 }
        let bad = try expectRun(["verify", "index.sqlite", "--json"], in: w.path, status: 1, stderr: "")
        let b = try jsonObject(bad.stdoutText)
        #expect(int(b["problem_count"]) == 1 && b["clean"] as? Bool == false)
        let problems = b["problems"] as? [[String: Any]] ?? []
        #expect(problems.count == 1)
        let p = problems.first ?? [:]
        #expect(p["kind"] as? String == "header" && p["shard"] as? String == shard.name)
        #expect(int(p["offset"]) == Int(header) && p["key"] as? String == key && p["ext"] as? String == "jpg")
        #expect(p["expected"] is String && p["found"] is String)
        #expect((p["message"] as? String)?.hasPrefix("shard '\(shard.name)' byte \(header) key '\(key)'") == true)
    }

    @Test("--data on an index without checksums: exit 1, the command that records them")
    func dataWithoutChecksums() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path)
        try expectFailure(
            ["verify", "index.sqlite", "--data"], in: w.path,
            message:
                "this index has no checksums; run `shardstore ingest --checksums index.sqlite SHARDS...` to record them (ingest reads the whole shards then)"
        )
        // The fix it names works, on the same (unchanged) shards.
        let ingest = try expectRun(
            ["ingest", "--checksums", "index.sqlite", "shard-*.tar", "--json"], in: w.path,
            stderr: "note: --checksums: read 3 unchanged shards indexed without checksums and recorded theirs\n")
        let o = try jsonObject(ingest.stdoutText)
        #expect(o["checksums_added"] as? [String] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"])
        #expect(int(o["bytes_checksummed"]) == w.shards.reduce(0) { $0 + $1.bytes.count })
        try expectRun(["verify", "index.sqlite", "--data", "--quiet"], in: w.path, stdout: "", stderr: "")
    }

    @Test("a missing shard is one line; its members are not read")
    func missingShard() throws {
        let w = try Workspace()
        try expectRun(["ingest", "index.sqlite", "shard-*.tar", "--quiet"], in: w.path)
        try FileManager.default.removeItem(atPath: w.file("shard-000001.tar"))
        let result = try expectRun(["verify", "index.sqlite"], in: w.path, status: 1, stderr: "")
        let out = lines(result.stdoutText)
        #expect(out.first == "shard 'shard-000001.tar': shard: the file is missing; its members were not checked")
        #expect(
            wholeMatch(
                (out.last ?? "") + "\n", summary(members: 24, shards: 3, data: false, bytes: "8,192", problems: 1)))
    }

    @Test("--help says what is checked, the exit codes and gives an example")
    func help() throws {
        let result = try CLI.run(["verify", "--help"], in: "/")
        #expect(result.status == 0)
        for phrase in ["with --data:", "Exit status:", "shardstore verify ds/index.sqlite --split val --data"] {
            #expect(result.stdoutText.contains(phrase), "\(phrase)")
        }
    }
}

/// CRC-32C bit by bit, from its definition.
private func crc32c(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - s.count) + s
}

/// `1234567` -> `1,234,567`.
private func grouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return out
}

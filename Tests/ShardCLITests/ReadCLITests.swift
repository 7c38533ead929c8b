import Foundation
import ShardTestSupport
import Testing

/// CRC-32 (IEEE, as zlib's crc32), written out here so the CLI's checksums are checked against an
/// independent implementation.
func referenceCRC32(_ bytes: [UInt8], _ crc: UInt32 = 0) -> UInt32 {
    var c = ~crc
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
    }
    return ~c
}

@Suite("shardstore bench, cat, info --strategy")
struct ReadCLITests {
    @Test("the CRC-32 reference gives the standard check value")
    func crcReference() {
        #expect(referenceCRC32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(referenceCRC32(Array("6789".utf8), referenceCRC32(Array("12345".utf8))) == 0xCBF4_3926)
    }

    @Test("bench --indices: the chained crc32 of the listed samples, the same for every strategy and thread count")
    func benchIndices() throws {
        let w = try Workspace()
        try w.ingestAll()
        let samples = w.allSamples
        let picks = [5, 0, 11, 5, 7, 2, 9, 9, 1]
        var file: [UInt8] = []
        for p in picks { withUnsafeBytes(of: Int64(p).littleEndian) { file += $0 } }
        try Data(file).write(to: URL(fileURLWithPath: w.path + "/picks.bin"))
        var crc: UInt32 = 0
        var bytes = 0
        for p in picks {
            for m in samples[p].members {
                crc = referenceCRC32(m.data, crc)
                bytes += m.data.count
            }
        }
        for strategy in ["auto", "memory", "mmap", "pread"] {
            for threads in ["1", "3"] {
                for lookup in ["table", "statements"] where !(strategy == "memory" && lookup == "statements") {
                    let r = try expectRun(
                        [
                            "bench", "index.sqlite", "--indices", "picks.bin", "--strategy", strategy, "--threads",
                            threads,
                            "--lookup", lookup, "--json",
                        ], in: w.path, stderr: "")
                    let o = try jsonObject(r.stdoutText)
                    #expect(int(o["checksum"]) == Int(crc), "\(strategy) \(threads) \(lookup)")
                    #expect(int(o["bytes"]) == bytes)
                    #expect(int(o["k"]) == picks.count)
                    #expect(int(o["samples"]) == 12)
                    #expect(o["mode"] as? String == "random")
                    #expect(o["lookup"] as? String == lookup)
                    if strategy != "auto" {
                        #expect(o["strategy"] as? String == strategy)
                        #expect(o["reason"] as? String == "requested")
                    }
                    for field in ["samples_per_s", "mb_per_s", "peak_rss_mb", "open_s", "run_s"] {
                        #expect((o[field] as? NSNumber)?.doubleValue ?? -1 > 0, "\(field)")
                    }
                }
            }
        }
    }

    @Test("bench --sequential covers every sample in order; --random is reproducible by seed")
    func benchSequentialAndRandom() throws {
        let w = try Workspace()
        try w.ingestAll()
        var crc: UInt32 = 0
        for s in w.allSamples { for m in s.members { crc = referenceCRC32(m.data, crc) } }
        for strategy in ["mmap", "pread", "memory"] {
            let r = try expectRun(
                ["bench", "index.sqlite", "--sequential", "--strategy", strategy, "--json"], in: w.path, stderr: "")
            let o = try jsonObject(r.stdoutText)
            #expect(int(o["checksum"]) == Int(crc))
            #expect(int(o["k"]) == 12)
            #expect(o["mode"] as? String == "sequential")
        }
        func checksum(_ extra: [String]) throws -> Int? {
            try int(
                jsonObject(try expectRun(["bench", "index.sqlite", "--json"] + extra, in: w.path).stdoutText)[
                    "checksum"])
        }
        let a = try checksum(["--random", "40", "--seed", "3"])
        #expect(a != nil)
        #expect(try checksum(["--random", "40", "--seed", "3", "--threads", "2", "--strategy", "pread"]) == a)
        #expect(try checksum(["--random", "40", "--seed", "4"]) != a)
    }

    @Test(
        "bench --touch pages: the sum of the bytes at every 4,096th offset of each member, for every mode, strategy and thread count"
    )
    func benchPages() throws {
        let w = try Workspace()
        try w.ingestAll()
        let samples = w.allSamples
        func pageSum(_ positions: [Int]) -> (sum: UInt64, bytes: Int) {
            var sum: UInt64 = 0
            var bytes = 0
            for p in positions {
                for m in samples[p].members {
                    for i in stride(from: 0, to: m.data.count, by: 4096) { sum &+= UInt64(m.data[i]) }
                    bytes += m.data.count
                }
            }
            return (sum, bytes)
        }
        let every = pageSum(Array(samples.indices))
        #expect(every.sum > 0)
        for strategy in ["mmap", "pread", "memory"] {
            let r = try expectRun(
                ["bench", "index.sqlite", "--sequential", "--strategy", strategy, "--touch", "pages", "--json"],
                in: w.path, stderr: "")
            let o = try jsonObject(r.stdoutText)
            #expect(o["touch"] as? String == "pages")
            #expect((o["checksum"] as? NSNumber)?.uint64Value == every.sum, "\(strategy)")
            #expect(int(o["bytes"]) == every.bytes)
        }
        let picks = [5, 0, 11, 5, 7, 2, 9, 9, 1]
        var file: [UInt8] = []
        for p in picks { withUnsafeBytes(of: Int64(p).littleEndian) { file += $0 } }
        try Data(file).write(to: URL(fileURLWithPath: w.path + "/picks.bin"))
        for threads in ["1", "3"] {
            let o = try jsonObject(
                try expectRun(
                    [
                        "bench", "index.sqlite", "--indices", "picks.bin", "--threads", threads, "--touch", "pages",
                        "--json",
                    ],
                    in: w.path, stderr: ""
                ).stdoutText)
            #expect((o["checksum"] as? NSNumber)?.uint64Value == pageSum(picks).sum, "threads \(threads)")
        }
        let text = lines(
            try expectRun(["bench", "index.sqlite", "--sequential", "--touch", "pages"], in: w.path, stderr: "")
                .stdoutText)
        #expect(text.last == "checksum   \(every.sum) (page sum)")
        // crc32 stays the default, and the JSON says so.
        let crc = try jsonObject(
            try expectRun(["bench", "index.sqlite", "--sequential", "--json"], in: w.path).stdoutText)
        #expect(crc["touch"] as? String == "crc32")
        let loader = try expectRun(
            ["bench", "index.sqlite", "--loader", "--batch-size", "4", "--touch", "pages"], in: w.path, status: 64,
            stdout: "")
        #expect(
            loader.stderrText.hasPrefix(
                "Error: --touch pages applies to --random, --indices and --sequential; --loader hashes with crc32.\n"))
        let bad = try expectRun(["bench", "index.sqlite", "--sequential", "--touch", "md5"], in: w.path, status: 64)
        #expect(bad.stderrText.contains("--touch"))
    }

    @Test("bench: text output, and errors for bad arguments and files")
    func benchErrors() throws {
        let w = try Workspace()
        try w.ingestAll()
        let text = try expectRun(
            ["bench", "index.sqlite", "--random", "5", "--strategy", "pread"], in: w.path, stderr: "")
        let out = lines(text.stdoutText)
        #expect(out.count == 7)
        #expect(out.first == "strategy   pread (requested)")
        #expect(out[2].hasPrefix("opened in  "))
        #expect(out[3].hasPrefix("read       5 samples ("))
        #expect(out[3].hasSuffix(" s with 1 thread"))
        #expect(out.last?.hasPrefix("checksum   ") == true)
        let usage = try expectRun(["bench", "index.sqlite"], in: w.path, status: 64)
        #expect(
            usage.stderrText.hasPrefix(
                "Error: Please give exactly one of --random K, --indices FILE, --sequential or --loader.\n"))
        let both = try expectRun(["bench", "index.sqlite", "--random", "3", "--sequential"], in: w.path, status: 64)
        #expect(
            both.stderrText.hasPrefix(
                "Error: Please give exactly one of --random K, --indices FILE, --sequential or --loader.\n")
        )
        let passInFlight = try expectRun(
            ["bench", "index.sqlite", "--sequential", "--in-flight", "8"], in: w.path, status: 64)
        #expect(
            passInFlight.stderrText.hasPrefix("Error: --in-flight applies to --random and --indices; leave it out.\n"))
        let noneInFlight = try expectRun(
            ["bench", "index.sqlite", "--random", "3", "--in-flight", "0"], in: w.path, status: 64)
        #expect(
            noneInFlight.stderrText.hasPrefix("Error: Please give --in-flight between 1 and 1024 requests, got 0.\n"))
        // Local shards: --in-flight changes nothing but the report.
        let local = try expectRun(
            ["bench", "index.sqlite", "--random", "20", "--in-flight", "4", "--json"], in: w.path, stderr: "")
        let plain = try expectRun(["bench", "index.sqlite", "--random", "20", "--json"], in: w.path, stderr: "")
        let localReport = try JSONSerialization.jsonObject(with: Data(local.stdoutText.utf8)) as! [String: Any]
        let plainReport = try JSONSerialization.jsonObject(with: Data(plain.stdoutText.utf8)) as! [String: Any]
        #expect(localReport["in_flight"] as? Int == 4 && plainReport["in_flight"] as? Int == 1)
        #expect(localReport["checksum"] as? Int == plainReport["checksum"] as? Int)

        try Data([1, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: w.path + "/bad.bin"))
        try expectFailure(
            ["bench", "index.sqlite", "--indices", "bad.bin"], in: w.path,
            message:
                "bad.bin: entry 1 is 12, outside the dataset's 0 to 11; write the file for this dataset"
        )
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: w.path + "/short.bin"))
        try expectFailure(
            ["bench", "index.sqlite", "--indices", "short.bin"], in: w.path,
            message: "short.bin is 3 bytes, not a whole number of 8-byte little-endian int64 positions")
        try expectFailure(
            ["bench", "index.sqlite", "--random", "3", "--memory-limit", "2X"], in: w.path,
            message:
                "'2X' is not a memory size: unknown unit 'X'; use a byte count or a number with K, M, G or T (such as 512M, 2G or 1.5GiB)"
        )
        try expectFailure(
            ["bench", "index.sqlite", "--random", "3", "--ext", "png"], in: w.path,
            message: "no member has extension '.png' (extensions: .jpg, .json)")
    }

    @Test("cat: members' bytes back to back in index order; --ext and --split select")
    func cat() throws {
        let w = try Workspace()
        try w.ingestAll()
        let all = w.allSamples
        for strategy in ["memory", "mmap", "pread"] {
            let r = try expectRun(["cat", "index.sqlite", "--strategy", strategy], in: w.path, stderr: "")
            #expect(r.stdout == all.flatMap { $0.members.flatMap(\.data) }, "\(strategy)")
        }
        let json = try expectRun(["cat", "index.sqlite", "--ext", ".JSON"], in: w.path, stderr: "")
        #expect(json.stdout == all.flatMap { $0.members[1].data })
        try expectRun(["split", "index.sqlite", "assign", "val", "--shards", "shard-000002.tar"], in: w.path)
        let val = try expectRun(["cat", "index.sqlite", "--split", "val", "--ext", "jpg", "--verbose"], in: w.path)
        #expect(val.stdout == w.shards[2].samples.flatMap { $0.members[0].data })
        let err = lines(val.stderrText)
        #expect(err.count == 2)
        // cat is one pass: auto maps rather than preloads.
        #expect(
            err.first
                == "strategy: mmap: a sequential pass reads each byte once and keeps nothing, so nothing is preloaded")
        #expect(err.last?.hasPrefix("wrote ") == true)
        try expectFailure(
            ["cat", "index.sqlite", "--split", "test"], in: w.path, message: "no split named 'test' (splits: val)")
    }

    @Test("info --strategy: the choice, its reason and figures; a memory limit changes it")
    func infoStrategy() throws {
        let w = try Workspace()
        try w.ingestAll()
        let bytes = w.allSamples.reduce(0) { $0 + $1.members.reduce(0) { $0 + $1.data.count } }
        let big = try expectRun(["info", "index.sqlite", "--strategy", "--memory-limit", "1G"], in: w.path, stderr: "")
        let out = lines(big.stdoutText)
        #expect(out.count == 5)
        #expect(out[0] == "strategy   memory")
        #expect(out[1].hasPrefix("reason     memory: the selection needs "))
        #expect(out[1].hasSuffix(" and --memory-limit allows 1.1 GB; it fits in half"))
        #expect(out[2].hasPrefix("lookup     in-memory location table ("))
        #expect(out[3] == "selection  12 samples, \(decimalBytes(bytes))")
        #expect(out[4] == "memory     1.07 GB available (--memory-limit)")

        let tiny = try expectRun(["info", "index.sqlite", "--strategy", "--json"], in: w.path, stderr: "")
        #expect(try jsonObject(tiny.stdoutText)["strategy"] as? String == "memory")
        let env = try runProcess(
            "/usr/bin/env",
            ["SHARDSTORE_MEMORY_LIMIT=1K", CLI.executable.get(), "info", "index.sqlite", "--strategy", "--json"],
            currentDirectory: w.path)
        #expect(env.status == 0)
        let o = try jsonObject(env.stdoutText)
        #expect(o["strategy"] as? String == "pread")
        #expect(o["lookup"] as? String == "file")
        #expect(o["location_file"] as? String == "index.sqlite-locations")
        #expect(int(o["available_bytes"]) == 1024)
        #expect(o["available_source"] as? String == "SHARDSTORE_MEMORY_LIMIT")
        #expect(
            (o["reason"] as? String)?.hasSuffix(
                "SHARDSTORE_MEMORY_LIMIT allows only 1.0 kB, under the 64 MiB floor for mmap") == true)
        #expect(int(o["selection_bytes"]) == bytes)

        let misuse = try expectRun(["info", "index.sqlite", "--split", "val"], in: w.path, status: 64)
        #expect(misuse.stderrText.hasPrefix("Error: --split, --ext and --memory-limit go with --strategy.\n"))
    }
}

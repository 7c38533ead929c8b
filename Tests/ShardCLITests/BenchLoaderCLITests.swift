import Foundation
import ShardTestSupport
import Testing

/// `shardstore bench --loader`: one epoch through the data loader, batches hashed as returned.
@Suite("shardstore bench --loader")
struct BenchLoaderCLITests {
    /// 24 samples (3 shards of 8), each a `.jpg` and a `.json`: every extension stays bytes.
    static func workspace() throws -> Workspace {
        let w = try Workspace(shards: 3, samples: 8)
        try w.ingestAll()
        return w
    }

    /// The chained crc32 of `samples`' members, in the order given, each sample's in archive order.
    static func crc(_ samples: [FixtureSample]) -> UInt32 {
        var crc: UInt32 = 0
        for s in samples { for m in s.members { crc = referenceCRC32(m.data, crc) } }
        return crc
    }

    static func run(_ extra: [String], in w: Workspace, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> [String: Any]
    {
        let r = try expectRun(
            ["bench", "index.sqlite", "--loader", "--json"] + extra, in: w.path, stderr: "",
            sourceLocation: sourceLocation)
        return try jsonObject(r.stdoutText, sourceLocation: sourceLocation)
    }

    static func double(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? -1 }

    @Test("sequential: every sample in order, batches of ceil(n/B) (floor with --drop-last); the crc of the members")
    func sequential() throws {
        let w = try Self.workspace()
        let all = w.allSamples
        let bytes = all.reduce(0) { $0 + $1.members.reduce(0) { $0 + $1.data.count } }
        let expected = Int(Self.crc(all))
        for strategy in ["memory", "mmap", "pread"] {
            let o = try Self.run(
                [
                    "--batch-size", "5", "--collate", "bytes", "--strategy", strategy, "--threads", "2", "--prefetch",
                    "3",
                ],
                in: w)
            #expect(int(o["checksum"]) == expected, "\(strategy)")
            #expect(int(o["samples"]) == 24)
            #expect(int(o["batches"]) == 5)
            #expect(int(o["batch_size"]) == 5)
            #expect(int(o["bytes"]) == bytes)
            #expect(int(o["threads"]) == 2)
            #expect(int(o["prefetch"]) == 3)
            #expect(o["loader"] as? String == "threads 2; prefetch 3 batches")
            #expect(o["order"] as? String == "sequential")
            #expect(o["mode"] as? String == "loader")
            #expect(o["strategy"] as? String == strategy)
            #expect(o["reason"] as? String == "requested")
            for field in ["samples_per_s", "batches_per_s", "mb_per_s", "peak_rss_mb", "open_s", "run_s"] {
                #expect(Self.double(o[field]) > 0, "\(field)")
            }
            #expect(Self.double(o["first_batch_s"]) > 0)
            #expect(Self.double(o["first_batch_s"]) <= Self.double(o["run_s"]))
        }
        // Native collation keeps .jpg and .json as bytes: the same hash; and the same as --sequential's.
        #expect(int(try Self.run(["--batch-size", "7"], in: w)["checksum"]) == expected)
        let plain = try expectRun(["bench", "index.sqlite", "--sequential", "--json"], in: w.path, stderr: "")
        #expect(int(try jsonObject(plain.stdoutText)["checksum"]) == expected)

        let dropped = try Self.run(["--batch-size", "5", "--drop-last"], in: w)
        #expect(int(dropped["batches"]) == 4)
        #expect(int(dropped["samples"]) == 20)
        #expect(int(dropped["checksum"]) == Int(Self.crc(Array(all.prefix(20)))))
        let even = try Self.run(["--batch-size", "6", "--drop-last"], in: w)
        #expect(int(even["batches"]) == 4)
        #expect(int(even["samples"]) == 24)

        // Auto threads and prefetch: the loader says what it chose.
        let auto = try Self.run(["--batch-size", "5"], in: w)
        #expect((auto["loader"] as? String)?.hasPrefix("threads auto, ") == true)
        #expect((auto["loader"] as? String)?.contains("; prefetch auto, ") == true)
        #expect(int(auto["threads"]) ?? 0 >= 1)
        #expect(int(auto["prefetch"]) ?? 0 >= 1)
    }

    @Test("shuffles: the golden orders of tools/sampler-golden.py; the same for any thread count; by seed and epoch")
    func shuffles() throws {
        let w = try Self.workspace()
        let all = w.allSamples
        // tools/sampler-golden.py: shuffled(24, 1, 0), shuffled(24, 1, 2), locality(24, 5, 1, 0, 0).
        let seed1 = [10, 17, 20, 6, 22, 15, 5, 9, 18, 7, 13, 1, 12, 23, 3, 2, 19, 11, 14, 4, 16, 0, 21, 8]
        let seed1Epoch2 = [10, 7, 4, 13, 16, 6, 21, 9, 2, 20, 0, 8, 5, 1, 15, 14, 17, 3, 12, 18, 11, 19, 22, 23]
        let locality = [1, 4, 2, 0, 3, 22, 20, 23, 21, 8, 7, 6, 9, 5, 10, 14, 13, 12, 11, 19, 17, 16, 18, 15]
        let shuffled = Int(Self.crc(seed1.map { all[$0] }))
        for threads in ["1", "3"] {
            let o = try Self.run(["--batch-size", "5", "--shuffle", "--seed", "1", "--threads", threads], in: w)
            #expect(int(o["checksum"]) == shuffled, "--threads \(threads)")
            #expect(o["order"] as? String == "shuffle")
            #expect(int(o["samples"]) == 24)
        }
        #expect(int(try Self.run(["--batch-size", "5", "--shuffle", "--seed", "1"], in: w)["checksum"]) == shuffled)
        let seed2 = try Self.run(["--batch-size", "5", "--shuffle", "--seed", "2"], in: w)
        #expect(int(seed2["checksum"]) != shuffled)
        #expect(int(seed2["samples"]) == 24)
        let epoch2 = try Self.run(["--batch-size", "4", "--shuffle", "--seed", "1", "--epoch", "2"], in: w)
        #expect(int(epoch2["checksum"]) == Int(Self.crc(seed1Epoch2.map { all[$0] })))
        #expect(int(epoch2["epoch"]) == 2)

        let o = try Self.run(["--batch-size", "5", "--locality-shuffle", "5", "--threads", "3"], in: w)
        #expect(int(o["checksum"]) == Int(Self.crc(locality.map { all[$0] })))
        #expect(o["order"] as? String == "locality_shuffle")
        #expect(int(o["block_size"]) == 5)
        #expect(int(o["window_blocks"]) == 1)
        let windows = try Self.run(["--batch-size", "5", "--locality-shuffle", "5,2", "--seed", "9"], in: w)
        #expect(int(windows["window_blocks"]) == 2)
        #expect(int(windows["samples"]) == 24)
    }

    @Test("native collation: a stacked .npy row, a label's 8 bytes, then the bytes columns, sample by sample")
    func native() throws {
        let w = try Workspace(shards: 0)
        var tar = TarWriter(format: .ustar)
        var nativeCRC: UInt32 = 0
        var nativeBytes = 0
        var rawCRC: UInt32 = 0
        for n in 0..<21 {
            let key = key6(n)
            var header = Array("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }".utf8)
            header += [UInt8](repeating: 0x20, count: (64 - (10 + header.count + 1) % 64) % 64) + [0x0A]
            let data: [UInt8] = (0..<3).flatMap { i in [UInt8(n * 3 + i), UInt8(i)] }
            let npy = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header + data
            let cls = Array("\(n % 5)\n".utf8)
            let txt = fixtureBytes(seed: n, count: 10 + n)
            tar.addFile("\(key).npy", npy)
            tar.addFile("\(key).cls", cls)
            tar.addFile("\(key).txt", txt)
            let label = (0..<8).map { UInt8(truncatingIfNeeded: (n % 5) >> (8 * $0)) }
            nativeCRC = referenceCRC32(data + label + txt, nativeCRC)
            nativeBytes += data.count + label.count + txt.count
            rawCRC = referenceCRC32(npy + cls + txt, rawCRC)
        }
        tar.finish()
        try tar.write(to: w.file("shard-000000.tar"))
        try w.ingestAll()
        for threads in ["1", "2"] {
            let o = try Self.run(["--batch-size", "4", "--threads", threads], in: w)
            #expect(int(o["checksum"]) == Int(nativeCRC), "--threads \(threads)")
            #expect(int(o["bytes"]) == nativeBytes)
            #expect(int(o["batches"]) == 6)
            #expect(o["collate"] as? String == "native")
        }
        let raw = try Self.run(["--batch-size", "4", "--collate", "bytes"], in: w)
        #expect(int(raw["checksum"]) == Int(rawCRC))
    }

    @Test("text: the strategy, the loader's choice, the order, the epoch's batches and samples, the rates")
    func text() throws {
        let w = try Self.workspace()
        let r = try expectRun(
            [
                "bench", "index.sqlite", "--loader", "--batch-size", "5", "--shuffle", "--seed", "3", "--epoch", "1",
                "--drop-last", "--collate", "bytes", "--threads", "1", "--prefetch", "1", "--strategy", "pread",
            ], in: w.path, stderr: "")
        let out = lines(r.stdoutText)
        #expect(out.count == 10, "\(r.stdoutText)")
        guard out.count == 10 else { return }
        #expect(out[0] == "strategy   pread (requested)")
        #expect(out[1].hasPrefix("lookup     "))
        #expect(wholeMatch(out[2], #"opened in  \d+\.\d{3} s \(the dataset and the loader\)"#), "\(out[2])")
        #expect(out[3] == "loader     threads 1; prefetch 1 batch")
        #expect(
            out[4] == "order      shuffle, seed 3, epoch 1; batches of 5, a short last one dropped; bytes collation")
        #expect(wholeMatch(out[5], #"read       20 samples in 4 batches \(\d+\.\d+ kB\) in \d+\.\d{3} s"#), "\(out[5])")
        #expect(wholeMatch(out[6], #"first      batch after \d+\.\d{4} s"#), "\(out[6])")
        #expect(wholeMatch(out[7], #"rate       [\d,]+ samples/s, \d+\.\d batches/s, \d+\.\d MB/s"#), "\(out[7])")
        #expect(wholeMatch(out[8], #"peak RSS   \d+\.\d MiB"#), "\(out[8])")
        #expect(wholeMatch(out[9], #"checksum   \d+ \(crc32\)"#), "\(out[9])")

        let locality = try expectRun(
            ["bench", "index.sqlite", "--loader", "--batch-size", "24", "--locality-shuffle", "4,2", "--threads", "1"],
            in: w.path, stderr: "")
        let lines = lines(locality.stdoutText)
        #expect(lines.count == 10)
        #expect(
            lines.contains(
                "order      locality shuffle (blocks of 4, windows of 2 blocks), seed 0, epoch 0; batches of 24; native collation"
            ))
        #expect(lines.contains { wholeMatch($0, #"read       24 samples in 1 batch \(.*\) in \d+\.\d{3} s"#) })

        // An epoch with no batch: the first batch's latency is null.
        let empty = try Self.run(["--batch-size", "25", "--drop-last"], in: w)
        #expect(int(empty["batches"]) == 0)
        #expect(int(empty["samples"]) == 0)
        #expect(empty["first_batch_s"] is NSNull)
    }

    @Test("usage errors: the conflict or the value to pass, exit 64")
    func usageErrors() throws {
        let w = try Self.workspace()
        let cases: [([String], String)] = [
            (["--batch-size", "5"], "--batch-size needs --loader."),
            (["--sequential", "--shuffle"], "--shuffle needs --loader."),
            (["--random", "3", "--drop-last"], "--drop-last needs --loader."),
            (["--sequential", "--prefetch", "2"], "--prefetch needs --loader."),
            (["--sequential", "--collate", "bytes"], "--collate needs --loader."),
            (["--sequential", "--epoch", "1"], "--epoch needs --loader."),
            (["--sequential", "--locality-shuffle", "4"], "--locality-shuffle needs --loader."),
            (
                ["--loader", "--batch-size", "5", "--random", "3"],
                "--loader cannot go with --random: the loader reads a whole epoch, in order or shuffled (--shuffle, --locality-shuffle)."
            ),
            (
                ["--loader", "--batch-size", "5", "--indices", "x.bin"],
                "--loader cannot go with --indices: the loader reads a whole epoch, in order or shuffled (--shuffle, --locality-shuffle)."
            ),
            (
                ["--loader", "--batch-size", "5", "--sequential"],
                "--loader cannot go with --sequential: the loader reads a whole epoch, in order or shuffled (--shuffle, --locality-shuffle)."
            ),
            (["--loader"], "--loader needs --batch-size B, the samples per batch (such as 256)."),
            (["--loader", "--batch-size", "0"], "--batch-size needs a positive count, got 0."),
            (
                ["--loader", "--batch-size", "100000001"],
                "Please give --batch-size at most 100000000, got 100000001."
            ),
            (
                ["--loader", "--batch-size", "5", "--prefetch", "0"],
                "--prefetch needs a positive count of batches, got 0; leave it out for auto (twice the threads)."
            ),
            (["--loader", "--batch-size", "5", "--threads", "0"], "--threads needs a positive count, got 0."),
            (["--loader", "--batch-size", "5", "--epoch=-1"], "--epoch counts from 0, got -1."),
            (
                ["--loader", "--batch-size", "5", "--shuffle", "--locality-shuffle", "4"],
                "--shuffle and --locality-shuffle cannot go together; give one of them."
            ),
            ([], "Please give exactly one of --random K, --indices FILE, --sequential or --loader."),
        ]
        var all = cases
        for bad in ["0", "4,0", "4,", ",2", "x", "4,2,1", " 4", ""] {
            all.append(
                (
                    ["--loader", "--batch-size", "5", "--locality-shuffle", bad],
                    "--locality-shuffle takes BLOCK or BLOCK,WINDOW, positive whole numbers (samples a block, blocks a window) such as 1000 or 1000,8; got '\(bad)'."
                ))
        }
        for (arguments, message) in all {
            let r = try expectRun(["bench", "index.sqlite"] + arguments, in: w.path, status: 64, stdout: "")
            #expect(r.stderrText.hasPrefix("Error: \(message)\n"), "\(arguments): \(r.stderrText)")
        }
    }

    @Test("--help shows the loader mode and an example")
    func help() throws {
        let r = try expectRun(["bench", "--help"], in: "/", stderr: "")
        let text = r.stdoutText.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(
            text.contains("shardstore bench ds/index.sqlite --loader --batch-size 256 --shuffle --seed 1"), "\(text)")
        #expect(text.contains("a bytes column's member (nothing when the sample has none)"), "\(text)")
        #expect(text.contains("--loader --batch-size B one epoch through the data loader, in batches of B"), "\(text)")
    }
}

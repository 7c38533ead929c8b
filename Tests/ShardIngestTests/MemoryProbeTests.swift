import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// A fake filesystem root holding `/proc` and `/sys/fs/cgroup` files.
private struct FakeRoot {
    let directory: TemporaryDirectory
    var path: String { directory.path }

    init() throws { directory = try TemporaryDirectory(prefix: "shardstore-memprobe") }

    /// Writes `text` to `relative` under the root, making folders as needed.
    func write(_ relative: String, _ text: String) throws {
        let full = path + "/" + relative
        let folder = (full as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    func meminfo(availableKB: Int64) throws {
        try write(
            "proc/meminfo",
            "MemTotal:       32768000 kB\nMemFree:         1000000 kB\nMemAvailable:   \(availableKB) kB\n"
                + "Buffers:          100000 kB\n")
    }

    func read(_ environment: [String: String] = [:]) throws -> MemoryFigures {
        try MemoryProbe.read(root: path, environment: environment)
    }
}

private let hint = "; use a byte count or a number with K, M, G or T (such as 512M, 2G or 1.5GiB)"
private let mebibyte: Int64 = 1 << 20
private let gibibyte: Int64 = 1 << 30

@Suite("MemoryProbe: MemAvailable, cgroup limits, the override, and the strategy auto picks")
struct MemoryProbeTests {
    @Test("a big host without cgroup limits: MemAvailable in bytes")
    func bigHost() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 20_800_000)
        try root.write("proc/self/cgroup", "0::/\n")
        let figures = try root.read()
        #expect(figures == MemoryFigures(memAvailable: 20_800_000 * 1024))
        #expect(figures.available == 21_299_200_000)
        #expect(figures.availableSource == .memAvailable)
    }

    @Test("a missing root gives nil figures, never an error")
    func missingFiles() throws {
        let root = try FakeRoot()
        #expect(try root.read() == MemoryFigures())
        #expect(try root.read().available == nil)
        try root.write("proc/meminfo", "MemTotal: 100 kB\n")
        try root.write("proc/self/cgroup", "garbage\n")
        try root.write("sys/fs/cgroup/memory.max", "not a number\n")
        #expect(try root.read() == MemoryFigures())
    }

    @Test("a cgroup v2 limit smaller than MemAvailable wins: limit minus usage")
    func cgroupV2Limit() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 20_800_000)
        try root.write("proc/self/cgroup", "0::/app.slice/job\n")
        try root.write("sys/fs/cgroup/app.slice/job/memory.max", "\(512 * mebibyte)\n")
        try root.write("sys/fs/cgroup/app.slice/job/memory.current", "\(256 * mebibyte)\n")
        let figures = try root.read()
        #expect(
            figures
                == MemoryFigures(
                    memAvailable: 20_800_000 * 1024, cgroupLimit: 512 * mebibyte, cgroupUsage: 256 * mebibyte))
        #expect(figures.available == 256 * mebibyte)
        #expect(figures.availableSource == .cgroup)
    }

    @Test("nested cgroup v2 levels: the level with the least headroom wins, wherever it is")
    func nestedCgroups() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 20_800_000)
        try root.write("proc/self/cgroup", "0::/a/b/c\n")
        try root.write("sys/fs/cgroup/a/memory.max", "\(gibibyte)\n")
        try root.write("sys/fs/cgroup/a/memory.current", "\(900 * mebibyte)\n")
        try root.write("sys/fs/cgroup/a/b/memory.max", "\(512 * mebibyte)\n")
        try root.write("sys/fs/cgroup/a/b/memory.current", "\(100 * mebibyte)\n")
        try root.write("sys/fs/cgroup/a/b/c/memory.max", "max\n")
        try root.write("sys/fs/cgroup/a/b/c/memory.current", "\(50 * mebibyte)\n")
        let figures = try root.read()
        #expect(figures.cgroupLimit == gibibyte)
        #expect(figures.cgroupUsage == 900 * mebibyte)
        #expect(figures.available == 124 * mebibyte)
        // The parent's usage drops: now the smaller limit of a/b leaves less headroom.
        try root.write("sys/fs/cgroup/a/memory.current", "\(200 * mebibyte)\n")
        #expect(try root.read().cgroupLimit == 512 * mebibyte)
        #expect(try root.read().available == 412 * mebibyte)
    }

    @Test("memory.max 'max' at every level is unlimited")
    func v2Unlimited() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 4_000_000)
        try root.write("proc/self/cgroup", "0::/user.slice\n")
        try root.write("sys/fs/cgroup/memory.max", "max\n")
        try root.write("sys/fs/cgroup/user.slice/memory.max", "max\n")
        try root.write("sys/fs/cgroup/user.slice/memory.current", "\(gibibyte)\n")
        let figures = try root.read()
        #expect(figures == MemoryFigures(memAvailable: 4_000_000 * 1024))
        #expect(figures.availableSource == .memAvailable)
    }

    @Test("cgroup v1: memory.limit_in_bytes and usage, at the mount root when the path is not visible")
    func cgroupV1() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 20_800_000)
        try root.write("proc/self/cgroup", "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n")
        try root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "\(gibibyte)\n")
        try root.write("sys/fs/cgroup/memory/memory.usage_in_bytes", "\(100 * mebibyte)\n")
        let figures = try root.read()
        #expect(
            figures
                == MemoryFigures(memAvailable: 20_800_000 * 1024, cgroupLimit: gibibyte, cgroupUsage: 100 * mebibyte))
        #expect(figures.available == 924 * mebibyte)
        // Visible on the host: the process's own v1 cgroup is read too.
        try root.write("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "\(300 * mebibyte)\n")
        try root.write("sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "\(10 * mebibyte)\n")
        #expect(try root.read().available == 290 * mebibyte)
    }

    @Test("cgroup v1 unlimited: the page-counter maximum and anything at or above 2^62")
    func v1Unlimited() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 1_000_000)
        try root.write("proc/self/cgroup", "4:memory:/\n0::/\n")
        try root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
        try root.write("sys/fs/cgroup/memory/memory.usage_in_bytes", "216813568\n")
        #expect(try root.read() == MemoryFigures(memAvailable: 1_024_000_000))
        try root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "\(Int64(1) << 62)\n")
        #expect(try root.read() == MemoryFigures(memAvailable: 1_024_000_000))
        try root.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "\((Int64(1) << 62) - 1)\n")
        #expect(try root.read().cgroupLimit == (Int64(1) << 62) - 1)
    }

    @Test("a low-RAM host picks pread")
    func lowRAMHost() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 39_000)
        let figures = try root.read()
        #expect(figures.available == 39_936_000)
        let choice = StrategyChoice.choose(
            requested: .auto, selectionBytes: 30_000_000, tableBytes: 0, memory: figures)
        #expect(choice.strategy == .pread)
        #expect(
            choice.reason
                == "pread: the selection needs 30.0 MB and only 39.9 MB are available (MemAvailable), "
                + "under the 64 MiB floor for mmap")
    }

    @Test("SHARDSTORE_MEMORY_LIMIT overrides every measured figure; a bad value names the variable")
    func overrideVariable() throws {
        let root = try FakeRoot()
        try root.meminfo(availableKB: 100_000)
        try root.write("proc/self/cgroup", "0::/job\n")
        try root.write("sys/fs/cgroup/job/memory.max", "\(64 * mebibyte)\n")
        let figures = try root.read(["SHARDSTORE_MEMORY_LIMIT": "2G"])
        #expect(figures == MemoryFigures(memAvailable: 102_400_000, cgroupLimit: 64 * mebibyte, override: 2 * gibibyte))
        #expect(figures.available == 2 * gibibyte)
        #expect(figures.availableSource == .override)
        let error = try #require(caught { _ = try root.read(["SHARDSTORE_MEMORY_LIMIT": "lots"]) })
        #expect(
            error as? MemorySizeError
                == MemorySizeError(
                    text: "lots", problem: "it does not start with a number", variable: "SHARDSTORE_MEMORY_LIMIT"))
        #expect(
            String(describing: error)
                == "SHARDSTORE_MEMORY_LIMIT='lots' is not a memory size: it does not start with a number" + hint)
        #expect(try root.read(["OTHER": "lots"]).override == nil)
    }

    @Test("parseSize: byte counts and binary units K, M, G, T with optional B or iB")
    func parseSizes() throws {
        let cases: [(String, Int64)] = [
            ("1048576", 1_048_576), ("512M", 512 * mebibyte), ("512mb", 512 * mebibyte), ("2G", 2 * gibibyte),
            ("1.5GiB", 1_610_612_736), ("64 KiB", 65_536), ("1k", 1024), ("1T", 1 << 40), ("3B", 3),
            (" 2G\n", 2 * gibibyte), (".5G", 512 * mebibyte), ("1.0", 1), ("0.001K", 1), ("8388607T", 8_388_607 << 40),
        ]
        for (text, bytes) in cases {
            #expect(try MemoryProbe.parseSize(text) == bytes, "\(text)")
        }
    }

    @Test("parseSize errors say what is wrong, exactly")
    func parseErrors() throws {
        let cases: [(String, String)] = [
            ("", "it is empty"),
            ("  ", "it is empty"),
            ("-5M", "it is negative"),
            ("abc", "it does not start with a number"),
            ("2X", "unknown unit 'X'"),
            ("2 GiBs", "unknown unit 'GiBs'"),
            ("1.5", "a byte count must be a whole number"),
            ("0", "it is zero"),
            ("0.0001K", "it is zero"),
            ("9999999999999999999", "it is larger than 9223372036854775807 bytes"),
            ("8388608T", "it is larger than 9223372036854775807 bytes"),
        ]
        for (text, problem) in cases {
            let error = try #require(caught { _ = try MemoryProbe.parseSize(text) }, "\(text)")
            #expect(error as? MemorySizeError == MemorySizeError(text: text, problem: problem), "\(text)")
            #expect(String(describing: error) == "'\(text)' is not a memory size: \(problem)" + hint)
        }
    }

    @Test("a requested strategy is kept")
    func requested() {
        let memory = MemoryFigures(memAvailable: 1000)
        for strategy in [LoadingStrategy.memory, .mmap, .pread] {
            let choice = StrategyChoice.choose(
                requested: strategy, selectionBytes: 1 << 40, tableBytes: 0, memory: memory)
            #expect(choice == StrategyChoice(strategy: strategy, reason: "requested"))
        }
        #expect(LoadingStrategy.allCases.map(\.rawValue) == ["auto", "memory", "mmap", "pread", "remote"])
    }

    @Test("auto picks memory when the selection and its table fit in half of what is available")
    func chooseMemory() {
        func choose(_ memory: MemoryFigures) -> StrategyChoice {
            StrategyChoice.choose(requested: .auto, selectionBytes: 200_000_000, tableBytes: 40_000_000, memory: memory)
        }
        #expect(
            choose(MemoryFigures(memAvailable: 21_300_000_000))
                == StrategyChoice(
                    strategy: .memory,
                    reason:
                        "memory: the selection needs 240 MB and 21.3 GB are available (MemAvailable); it fits in half"))
        #expect(
            choose(MemoryFigures(memAvailable: 21_300_000_000, cgroupLimit: 2_000_000_000, cgroupUsage: 500_000_000))
                == StrategyChoice(
                    strategy: .memory,
                    reason: "memory: the selection needs 240 MB and this cgroup may still use 1.5 GB; it fits in half"))
        #expect(
            choose(MemoryFigures(memAvailable: 1000, override: 480_000_000))
                == StrategyChoice(
                    strategy: .memory,
                    reason:
                        "memory: the selection needs 240 MB and SHARDSTORE_MEMORY_LIMIT allows 480 MB; it fits in half")
        )
        // One byte more than half is not memory.
        #expect(choose(MemoryFigures(memAvailable: 479_999_999)).strategy == .mmap)
    }

    @Test("auto picks mmap when the selection is more than half but 64 MiB or more is available")
    func chooseMmap() {
        func choose(_ memory: MemoryFigures) -> StrategyChoice {
            StrategyChoice.choose(requested: .auto, selectionBytes: 2_400_000_000, tableBytes: 0, memory: memory)
        }
        #expect(
            choose(MemoryFigures(memAvailable: 4_000_000_000))
                == StrategyChoice(
                    strategy: .mmap,
                    reason: "mmap: the selection needs 2.4 GB, more than half of the 4.0 GB available (MemAvailable)"))
        #expect(
            choose(MemoryFigures(memAvailable: 21_300_000_000, cgroupLimit: 512_000_000, cgroupUsage: 256_000_000))
                == StrategyChoice(
                    strategy: .mmap,
                    reason: "mmap: the selection needs 2.4 GB, more than half of the 256 MB this cgroup may still use"))
        #expect(
            choose(MemoryFigures(override: 64 << 20))
                == StrategyChoice(
                    strategy: .mmap,
                    reason:
                        "mmap: the selection needs 2.4 GB, more than half of the 67.1 MB SHARDSTORE_MEMORY_LIMIT allows"
                ))
    }

    @Test("auto picks pread under 64 mebibyte, and mmap when memory is unknown")
    func choosePreadAndUnknown() {
        func choose(_ memory: MemoryFigures) -> StrategyChoice {
            StrategyChoice.choose(
                requested: .auto, selectionBytes: 900_000_000, tableBytes: 100_000_000, memory: memory)
        }
        #expect(
            choose(MemoryFigures(memAvailable: 50_000_000))
                == StrategyChoice(
                    strategy: .pread,
                    reason: "pread: the selection needs 1.0 GB and only 50.0 MB are available (MemAvailable), "
                        + "under the 64 MiB floor for mmap"))
        #expect(
            choose(MemoryFigures(memAvailable: 8_000_000_000, cgroupLimit: 100_000_000, cgroupUsage: 120_000_000))
                == StrategyChoice(
                    strategy: .pread,
                    reason: "pread: the selection needs 1.0 GB and this cgroup may only use 0 bytes more, "
                        + "under the 64 MiB floor for mmap"))
        #expect(
            choose(MemoryFigures(override: (64 << 20) - 1))
                == StrategyChoice(
                    strategy: .pread,
                    reason: "pread: the selection needs 1.0 GB and SHARDSTORE_MEMORY_LIMIT allows only 67.1 MB, "
                        + "under the 64 MiB floor for mmap"))
        #expect(
            choose(MemoryFigures())
                == StrategyChoice(
                    strategy: .mmap,
                    reason: "mmap: the selection needs 1.0 GB and the available memory could not be determined "
                        + "(no MemAvailable, cgroup limit or SHARDSTORE_MEMORY_LIMIT); the kernel can evict mapped pages"
                ))
    }
}

import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// The fixture tree every producer packs: members with plain, upper-case, dotted and empty
/// extensions, sizes on and around block boundaries, non-ASCII names, names longer than 100 and
/// 155 bytes in subdirectories; plus entries that are not members (directories, a symlink, a
/// README without extension, `__meta__`).
struct FixtureTree {
    enum LongNames {
        /// Names of at most 100 bytes (v7).
        case none
        /// Up to 181 bytes, splittable into a 131-byte prefix and a name (ustar, star).
        case splittable
        /// Also a 326-byte name (GNU, pax).
        case unlimited
    }

    static let d1 = String(repeating: "d", count: 70)
    static let d2 = d1 + "/" + String(repeating: "e", count: 60)
    static let f1 = String(repeating: "f", count: 100)
    static let f2 = f1 + "/" + String(repeating: "g", count: 100)

    var long: LongNames

    /// Member files in archive order (directory order = name order, as `--sort=name` and Python
    /// give it; the top-level items are passed in this order).
    var members: [FixtureFile] {
        var files: [FixtureFile] = [
            FixtureFile(name: "000001.cls", bytes: Array("3\n".utf8)),
            FixtureFile(name: "000001.jpg", bytes: pattern(1000, seed: 1)),
            FixtureFile(name: "000001.json", bytes: Array("{\"label\": 3}".utf8)),
            FixtureFile(name: "000002.TXT", bytes: pattern(513, seed: 2)),
            FixtureFile(name: "000002.jpg", bytes: pattern(512, seed: 3)),
            FixtureFile(name: "000003.seg.png", bytes: pattern(2000, seed: 4)),
            FixtureFile(name: "000004.txt", bytes: []),
        ]
        if long != .none {
            let name = Self.d2 + "/long_" + String(repeating: "x", count: 40)
            files.append(FixtureFile(name: name + ".jpg", bytes: pattern(700, seed: 5)))
            files.append(FixtureFile(name: name + ".json", bytes: Array("{}".utf8)))
        }
        files += [
            FixtureFile(name: "a.b/x.y.z", bytes: pattern(5, seed: 6))
        ]
        if long == .unlimited {
            files.append(
                FixtureFile(
                    name: Self.f2 + "/" + String(repeating: "h", count: 120) + ".bin", bytes: pattern(1536, seed: 7)))
        }
        files += [
            FixtureFile(name: "ünï/日本語.jpg", bytes: pattern(100, seed: 8)),
            FixtureFile(name: "ünï/日本語.json", bytes: Array("[1,2]".utf8)),
        ]
        return files
    }

    var directories: [String] {
        var dirs = ["a.b", "ünï"]
        if long != .none { dirs += [Self.d1, Self.d2] }
        if long == .unlimited { dirs += [Self.f1, Self.f2] }
        return dirs
    }

    /// Writes the tree below `root`.
    func write(to root: String) throws {
        let fm = FileManager.default
        for d in directories { try fm.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
        for f in members { try writeBytes(f.bytes, to: root + "/" + f.name) }
        try writeBytes(Array("not a member\n".utf8), to: root + "/README")
        try writeBytes(Array("{\"meta\": true}".utf8), to: root + "/__meta__")
        try fm.createSymbolicLink(atPath: root + "/link.jpg", withDestinationPath: "000001.jpg")
        // A second name for 000001.jpg: producers store it as a hard link (typeflag 1), not a member.
        try fm.linkItem(atPath: root + "/000001.jpg", toPath: root + "/hard.jpg")
    }

    /// The top-level items to hand to a tar program, sorted by name.
    func topLevel(_ root: String) throws -> [String] {
        try listing(root)
    }

    var expectedSkips: SkipCounts {
        skips(directories: directories.count, symlinks: 1, hardLinks: 1, metadataNames: 1, noExtension: 1)
    }
}

@Suite("Round trips: every member's bytes come back exactly")
struct RoundTripTests {
    /// Ingests `shard` alone into a new index beside it and checks counts, skips and bytes.
    func check(shard: String, in dir: String, tree: FixtureTree, ordered: Bool) throws {
        let index = dir + "/index.sqlite"
        let report = try Ingest.run(index: index, shards: [shard], options: IngestOptions(jobs: 2))
        let expected = expectedSamples(tree.members)
        #expect(report.createdIndex)
        #expect(report.added == [Paths.basename(of: shard)])
        #expect(report.changed == [])
        #expect(report.unchanged == [])
        #expect(report.members == tree.members.count)
        #expect(report.newSamples == expected.count)
        #expect(report.totalSamples == expected.count)
        #expect(report.skipped == tree.expectedSkips)
        #expect(report.keysSeenAgain == 0)
        #expect(report.duplicatesDropped == 0 && report.duplicatesReplaced == 0 && report.duplicatesKept == 0)
        let shards = try IndexReader(path: index).shards()
        #expect(shards.map(\.path) == [Paths.basename(of: shard)])
        #expect(shards.first?.memberCount == tree.members.count)
        #expect(shards.first?.skippedCount == tree.expectedSkips.total)
        #expect(shards.first?.size == Int64(try readBytes(shard).count))
        try expectDataset(index, equals: expected, ordered: ordered)
        // Every strategy and lookup checks each member's own header: no false alarm on any
        // producer's long, non-ASCII or upper-case names.
        for (strategy, lookup) in strategyLookups {
            let ds = try Dataset(index: index, strategy: strategy, options: Dataset.Options(lookup: lookup))
            let all = try loadAll(ds)
            #expect(Set(all.map(\.description)) == Set(expected.map(\.description)), "\(strategy) \(lookup)")
            for e in expected { #expect(try ds.sample(forKey: e.key).members == e.members, "\(strategy) \(lookup)") }
            var seen = 0
            try ds.forEachSample { _ in seen += 1 }
            #expect(seen == expected.count, "\(strategy) \(lookup)")
        }
    }

    @Test("TarWriter shards in every format", arguments: TarWriter.Format.allCases)
    func tarWriter(format: TarWriter.Format) throws {
        let dir = try TemporaryDirectory()
        let long: FixtureTree.LongNames =
            switch format {
            case .v7: .none
            case .ustar, .star: .splittable
            case .gnu, .pax: .unlimited
            }
        let tree = FixtureTree(long: long)
        var tar = TarWriter(format: format)
        for d in tree.directories { tar.addDirectory(d) }
        tar.addFile("README", Array("x".utf8))
        tar.addFile("__meta__", Array("{}".utf8))
        tar.addSymlink("link.jpg", target: "000001.jpg")
        for f in tree.members { tar.addFile(f.name, f.bytes) }
        tar.addHardLink("hard.jpg", target: "000001.jpg")
        tar.finish(recordSize: 10240)
        try tar.write(to: dir.path + "/shard.tar")
        // The writer's own expectations: every member's data offset and length as recorded.
        try check(shard: dir.path + "/shard.tar", in: dir.path, tree: tree, ordered: true)
        let reader = try IndexReader(path: dir.path + "/index.sqlite")
        var locations: [MemberLocation] = []
        try reader.forEachSample { s in
            locations += s.members.map(\.location)
            return true
        }
        let expectedLocations = tar.entries.filter {
            $0.kind == .regular && $0.name.contains(UInt8(ascii: ".")) && $0.name != Array("__meta__".utf8)
        }
        .map { MemberLocation(shardID: 0, headerOffset: $0.headerOffset, dataOffset: $0.dataOffset, length: $0.size) }
        #expect(Set(locations) == Set(expectedLocations))
        #expect(locations.count == tree.members.count)
    }

    @Test("GNU tar shards", arguments: ["gnu", "posix", "ustar"])
    func gnuTar(format: String) throws {
        let dir = try TemporaryDirectory()
        let tree = FixtureTree(long: format == "ustar" ? .splittable : .unlimited)
        let src = dir.path + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try tree.write(to: src)
        let shard = dir.path + "/shard-gnu-\(format).tar"
        let result = try runProcess(
            "env",
            ["LC_ALL=C.UTF-8", "tar", "--format=\(format)", "--sort=name", "-cf", shard, "-C", src] + tree.topLevel(src)
        )
        #expect(result.status == 0, "\(result.stderrText)")
        try check(shard: shard, in: dir.path, tree: tree, ordered: false)
    }

    @Test("Python tarfile shards", arguments: ["GNU_FORMAT", "PAX_FORMAT", "USTAR_FORMAT"])
    func pythonTarfile(format: String) throws {
        let dir = try TemporaryDirectory()
        let tree = FixtureTree(long: format == "USTAR_FORMAT" ? .splittable : .unlimited)
        let src = dir.path + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try tree.write(to: src)
        let shard = dir.path + "/shard-py-\(format).tar"
        let script = """
            import os, sys, tarfile
            out, src, names = sys.argv[1], sys.argv[2], sys.argv[3:]
            with tarfile.open(out, "w", format=tarfile.\(format), encoding="utf-8") as tar:
                for n in names:
                    tar.add(os.path.join(src, n), arcname=n)
            """
        let result = try runProcess("python3", ["-c", script, shard, src] + tree.topLevel(src))
        #expect(result.status == 0, "\(result.stderrText)")
        try check(shard: shard, in: dir.path, tree: tree, ordered: false)
    }

    @Test("webdataset ShardWriter shards (the real library)")
    func webdatasetLibrary() throws {
        guard let python = pythonWithWebDataset() else {
            // tools/test installs webdataset into .build-venv; CI must never skip this check.
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("webdataset is not importable: run tools/setup-system (it makes .build-venv)")
            }
            return
        }
        let dir = try TemporaryDirectory()
        // Samples as the library writes them: members sorted by extension within a sample.
        var samples: [ExpectedSample] = []
        var manifest: [[String: Any]] = []
        let keys = (0..<7).map { String(format: "sample%06d", $0) } + ["dir/sub/sample7", "ünï/日本"]
        for (i, key) in keys.enumerated() {
            var members: [String: [UInt8]] = [
                "jpg": pattern(300 + 97 * i, seed: i),
                "cls": Array("\(i % 3)".utf8),
            ]
            if i % 2 == 0 { members["seg.png"] = pattern(511 + i, seed: 100 + i) }
            if i == 4 { members["json"] = [] }
            var files: [String: String] = [:]
            for (ext, bytes) in members {
                let file = "m\(i).\(ext)"
                try writeBytes(bytes, to: dir.path + "/" + file)
                files[ext] = file
            }
            manifest.append(["key": key, "files": files])
            samples.append(ExpectedSample(key: SampleKey(key), members: members))
        }
        try JSONSerialization.data(withJSONObject: manifest).write(
            to: URL(fileURLWithPath: dir.path + "/manifest.json"))
        try FileManager.default.createDirectory(atPath: dir.path + "/ds", withIntermediateDirectories: true)
        let script = """
            import json, os, sys
            import webdataset as wds
            root = sys.argv[1]
            manifest = json.load(open(os.path.join(root, "manifest.json")))
            with wds.ShardWriter(os.path.join(root, "ds", "wds-%06d.tar"), maxcount=4, verbose=0) as sink:
                for s in manifest:
                    sample = {"__key__": s["key"]}
                    for ext, f in s["files"].items():
                        sample[ext] = open(os.path.join(root, f), "rb").read()
                    sink.write(sample)
            """
        let result = try runProcess(python, ["-c", script, dir.path])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(try listing(dir.path + "/ds") == ["wds-000000.tar", "wds-000001.tar", "wds-000002.tar"])
        let index = dir.path + "/ds/index.sqlite"
        let report = try Ingest.run(index: index, shards: [dir.path + "/ds/wds-*.tar"])
        #expect(report.added == ["wds-000000.tar", "wds-000001.tar", "wds-000002.tar"])
        #expect(report.newSamples == keys.count)
        #expect(report.members == samples.reduce(0) { $0 + $1.members.count })
        #expect(report.skipped == SkipCounts())
        // Global order: shard order, then order of appearance = the order written.
        try expectDataset(index, equals: samples, ordered: true)

        // And webdataset itself reads the same samples back (a cross-check of the fixture).
        let readBack = try runProcess(
            python,
            [
                "-c",
                "import sys, webdataset as wds\nfor s in wds.WebDataset(sys.argv[1:], shardshuffle=False): print(s['__key__'], sorted(k for k in s if not k.startswith('__')))",
            ] + (0..<3).map { dir.path + "/ds/wds-00000\($0).tar" })
        #expect(readBack.status == 0, "\(readBack.stderrText)")
        let ours = try loadAll(Dataset(index: index)).map {
            "\($0.key) [\($0.members.keys.sorted().map { "'\($0)'" }.joined(separator: ", "))]"
        }
        #expect(readBack.stdoutText.split(separator: "\n").map(String.init) == ours)
    }
}

import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

@Suite("Raw export: files and packed layouts, byte for byte")
struct RawExportTests {
    @Test("files layout without a split: DIR/<key>.<ext>, subfolders for keys with folders, exact bytes")
    func filesWholeDataset() throws {
        let ws = try RawWorkspace.standard()
        let report = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/out"), layout: .files)
        let expected = expectedFiles(ws.samples)
        #expect(try tree(ws.path + "/out") == expected)
        let members = ws.samples.reduce(0) { $0 + $1.members.count }
        let bytes = ws.samples.reduce(0) { $0 + $1.members.values.reduce(0) { $0 + $1.count } }
        #expect(report.samples == ws.samples.count)
        #expect(report.members == members)
        #expect(report.bytesRead == Int64(bytes))
        #expect(report.bytesWritten == Int64(bytes))
        #expect(report.out == ws.path + "/out")
        #expect(report.entries == Set(expected.keys.map { String($0.split(separator: "/")[0]) }).sorted())
        #expect(report.entries.suffix(4) == ["cats", "dogs", "empty.cls", "empty.jpg"])
        #expect(try ws.listing() == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations", "out"])
    }

    @Test("files layout with a split and --ext: DIR/<split>/<key>.<ext>, only those samples and extensions")
    func filesSplitAndExtensions() throws {
        let ws = try RawWorkspace.standard()
        let val = ["000001", "000002", "cats/sub.d/0003", "dogs/0001"]
        try ws.assign("val", keys: val)
        for (strategy, out, report) in try ws.exportWithEachStrategy("val", [".JPG", "cls"], .files) {
            let samples = ws.samples.filter { val.contains($0.key) }
            #expect(try tree(out) == expectedFiles(samples, prefix: "val/", extensions: ["jpg", "cls"]), "\(strategy)")
            #expect(report.entries == ["val"])
            #expect(report.samples == 4)
            #expect(report.members == 7)
            #expect(report.choice.strategy == strategy)
        }
    }

    @Test("packed layout without a split: <ext>.bin, <ext>.offsets.npy, keys.txt; missing members are empty ranges")
    func packedWholeDataset() throws {
        let ws = try RawWorkspace.standard()
        let report = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/p"), layout: .packed)
        let extensions = ["cls", "jpg", "seg.png"]
        try expectPacked(ws.path + "/p", ws.samples, extensions: extensions)
        #expect(report.entries == extensions.flatMap { [$0 + ".bin", $0 + ".offsets.npy"] } + ["keys.txt"])
        let members = ws.samples.reduce(0) { $0 + $1.members.count }
        #expect(report.members == members)
        let written = try report.entries.reduce(0) { $0 + (try fileBytes(ws.path + "/p/" + $1).count) }
        #expect(report.bytesWritten == Int64(written))
    }

    @Test("packed layout with a split and --ext, every strategy")
    func packedSplitAndExtensions() throws {
        let ws = try RawWorkspace.standard()
        let train = ["000000", "000002", "000004", "empty", "cats/sub.d/0000", "cats/sub.d/0002"]
        try ws.assign("train", keys: train)
        for (_, out, report) in try ws.exportWithEachStrategy("train", ["seg.png", "jpg"], .packed) {
            #expect(try FileManager.default.contentsOfDirectory(atPath: out) == ["train"])
            try expectPacked(
                out + "/train", ws.samples.filter { train.contains($0.key) }, extensions: ["jpg", "seg.png"])
            #expect(report.entries == ["train"])
            #expect(report.samples == 6)
        }
    }

    @Test("an extension no sample of the split has is refused (as Dataset refuses it), and nothing is written")
    func packedAbsentExtension() throws {
        let ws = try RawWorkspace.standard()
        try ws.assign("few", keys: ["000002", "empty"])
        let error = thrown {
            _ = try RawExport.run(
                ExportRequest(index: ws.index, out: ws.path + "/p", splits: ["few"], extensions: ["seg.png"]),
                layout: .packed)
        }
        #expect(error.map { "\($0)" } == "no member has extension '.seg.png' (extensions: .cls, .jpg)")
        #expect(try ws.listing() == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations"])
    }

    @Test("a sample lacking the member has an empty range; an all-empty member is an empty range too")
    func packedMissingAndEmptyMembers() throws {
        let ws = try RawWorkspace.standard()
        try ws.assign("few", keys: ["000001", "000002", "empty", "000003"])
        _ = try RawExport.run(
            ExportRequest(index: ws.index, out: ws.path + "/p", splits: ["few"], extensions: ["seg.png", "jpg"]),
            layout: .packed)
        let seg = ws.samples.filter { ["000001", "000003"].contains($0.key) }.map { $0.members["seg.png"]!.count }
        #expect(try readOffsets(ws.path + "/p/few/seg.png.offsets.npy") == [0, 101, 101, 204, 204].map(Int64.init))
        #expect(seg == [101, 103])
        let jpg = try readOffsets(ws.path + "/p/few/jpg.offsets.npy")
        #expect(jpg.count == 5 && jpg[3] == jpg[4] && jpg[2] < jpg[3])
        #expect(try fileBytes(ws.path + "/p/few/keys.txt") == Array("000001\n000002\n000003\nempty\n".utf8))
    }

    @Test("an empty split makes an empty split folder (files) or zero-length arrays (packed)")
    func emptySplit() throws {
        let ws = try RawWorkspace.standard()
        try ws.assign("none", keys: ["000000"])
        try ws.assign("other", keys: ["000000"])
        let files = try RawExport.run(
            ExportRequest(index: ws.index, out: ws.path + "/f", splits: ["none"]), layout: .files)
        #expect(files.samples == 0)
        #expect(try tree(ws.path + "/f") == ["none/": []])
        _ = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/p", splits: ["none"]), layout: .packed)
        try expectPacked(ws.path + "/p/none", [], extensions: [])
    }

    @Test("'./' prefixes and empty components (as `tar cf x.tar .` writes) are dropped in the files layout")
    func dotComponents() throws {
        let ws = try RawWorkspace([
            RawShard(
                name: "dot.tar",
                members: [
                    ("./000001.jpg", [1, 2, 3]), ("./000001.txt", Array("one".utf8)), ("./a//b/./c.jpg", [4, 5]),
                ])
        ])
        _ = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/out"), layout: .files)
        #expect(
            try tree(ws.path + "/out") == [
                "000001.jpg": [1, 2, 3], "000001.txt": Array("one".utf8), "a/": [], "a/b/": [], "a/b/c.jpg": [4, 5],
            ])
        // Packed keeps the keys as the index holds them.
        _ = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/p"), layout: .packed)
        #expect(try fileBytes(ws.path + "/p/keys.txt") == Array("./000001\n./a//b/./c\n".utf8))
    }

    @Test("the files are synced and published: no temporary is left beside the output")
    func noTemporaryLeft() throws {
        let ws = try RawWorkspace.standard()
        let phases = Mutex<[ExportProgress.Phase]>([])
        _ = try RawExport.run(
            ExportRequest(index: ws.index, out: ws.path + "/out"), layout: .packed,
            progress: { p in phases.withLock { if $0.last != p.phase { $0.append(p.phase) } } })
        #expect(phases.withLock { $0 } == [.planning, .writing, .publishing])
        #expect(!exists(ws.temporary(of: "out")))
        #expect(try ws.listing() == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations", "out"])
    }

    @Test("numpy reads the packed layout back: np.load(offsets), np.memmap(bin), compared with Python's tarfile")
    func numpyReadsPacked() throws {
        guard let python = testPython(importing: "numpy") else { return }
        let ws = try RawWorkspace.standard()
        try ws.assign("train", keys: ["000000", "000001", "000002", "cats/sub.d/0001", "dogs/0001", "empty"])
        _ = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/all"), layout: .packed)
        _ = try RawExport.run(
            ExportRequest(index: ws.index, out: ws.path + "/train", splits: ["train"], extensions: ["jpg", "seg.png"]),
            layout: .packed)
        let script = """
            import sys, tarfile, numpy as np
            folder, wanted, exts, shards = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
            samples = {}
            for path in shards:
                with tarfile.open(path) as tar:
                    for m in tar:
                        if not m.isfile():
                            continue
                        slash = m.name.rfind("/")
                        dot = m.name.index(".", slash + 1)
                        key, ext = m.name[:dot], m.name[dot + 1:].lower()
                        samples.setdefault(key, {})[ext] = tar.extractfile(m).read()
            keys = open(folder + "/keys.txt", encoding="utf-8", errors="surrogateescape").read().split("\\n")[:-1]
            expected = [k for k in samples if wanted == "*" or k in wanted.split(",")]
            assert keys == expected, (keys, expected)
            exts = sorted({e for s in samples.values() for e in s}) if exts == "*" else exts.split(",")
            members = 0
            for ext in exts:
                offsets = np.load(folder + "/" + ext + ".offsets.npy")
                assert offsets.dtype == np.dtype("<i8") and offsets.shape == (len(keys) + 1,), (offsets.dtype, offsets.shape)
                data = np.memmap(folder + "/" + ext + ".bin", dtype=np.uint8, mode="r")
                assert offsets[0] == 0 and offsets[-1] == data.shape[0]
                for i, key in enumerate(keys):
                    got = data[offsets[i]:offsets[i + 1]].tobytes()
                    assert got == samples[key].get(ext, b""), (ext, key)
                    members += ext in samples[key]
            print("ok", len(keys), len(exts), members)
            """
        let shards = ws.shards.map { ws.path + "/" + $0.name }
        let all = try runProcess(python, ["-c", script, ws.path + "/all", "*", "*"] + shards)
        #expect(all.status == 0, "\(all.stderrText)")
        #expect(all.stdoutText == "ok 11 3 25\n")
        let train = try runProcess(
            python,
            [
                "-c", script, ws.path + "/train/train", "000000,000001,000002,cats/sub.d/0001,dogs/0001,empty",
                "jpg,seg.png",
            ]
                + shards)
        #expect(train.status == 0, "\(train.stderrText)")
        #expect(train.stdoutText == "ok 6 2 8\n")
    }
}

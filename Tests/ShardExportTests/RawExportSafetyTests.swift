import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

@Suite("Raw export: names that would leave the folder or clash in it")
struct RawExportSafetyTests {
    typealias Unsafe = ExportError.UnsafeName

    /// Runs a files-layout export to `ws/out` that must fail with `error`, and checks that
    /// nothing was written: no `out`, no temporary, the workspace as it was.
    private func expectRefused(
        _ ws: RawWorkspace, _ error: ExportError, split: String? = nil, layout: RawLayout = .files,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let before = try ws.listing()
        let thrownError = thrown {
            _ = try RawExport.run(
                ExportRequest(index: ws.index, out: ws.path + "/out", splits: split.map { [$0] } ?? []), layout: layout)
        }
        #expect(
            thrownError as? ExportError == error, "\(String(describing: thrownError))", sourceLocation: sourceLocation)
        #expect(try ws.listing() == before, sourceLocation: sourceLocation)
        #expect(!exists(ws.path + "/out") && !exists(ws.temporary(of: "out")), sourceLocation: sourceLocation)
    }

    @Test("'..' components and absolute names are refused in one error listing them; nothing escapes or appears")
    func traversal() throws {
        let token = UUID().uuidString
        let ws = try RawWorkspace([
            RawShard(
                name: "evil.tar",
                members: [
                    ("000001.jpg", [1]), ("../escape-\(token).jpg", [2]), ("a/../../escape2-\(token).jpg", [3]),
                    ("/nonexistent-\(token)/abs.jpg", [4]), ("ok/./fine.jpg", [5]), ("dir/..", [6]),
                    ("dir/...jpg", [7]),
                ])
        ])
        let expected: [Unsafe] = [
            Unsafe(path: "../escape-\(token).jpg", reason: "has a '..' component", shard: "evil.tar"),
            Unsafe(path: "a/../../escape2-\(token).jpg", reason: "has a '..' component", shard: "evil.tar"),
            Unsafe(path: "/nonexistent-\(token)/abs.jpg", reason: "is absolute", shard: "evil.tar"),
            Unsafe(path: "dir/..", reason: "has a '..' component", shard: "evil.tar"),
        ]
        try expectRefused(ws, .unsafeNames(expected))
        #expect(!exists(ws.path + "/../escape-\(token).jpg"))
        #expect(!exists(ws.path + "/../escape2-\(token).jpg"))
        #expect(!exists("/nonexistent-\(token)"))
        #expect(
            "\(ExportError.unsafeNames(expected))"
                == "refusing to export 4 member names that cannot be written safely inside the output folder: '../escape-\(token).jpg' (has a '..' component, in 'evil.tar'), 'a/../../escape2-\(token).jpg' (has a '..' component, in 'evil.tar'), '/nonexistent-\(token)/abs.jpg' (is absolute, in 'evil.tar'), 'dir/..' (has a '..' component, in 'evil.tar'); nothing was written. Rename them in the shards, or export with --format hdf5"
        )
    }

    @Test("in a split, the same names are refused; the packed layout writes them as keys only")
    func traversalInSplitAndPacked() throws {
        let ws = try RawWorkspace([
            RawShard(name: "s.tar", members: [("../up.jpg", [1, 2]), ("/abs.jpg", [3]), ("fine.jpg", [4])])
        ])
        try ws.assign("val", keys: ["../up", "/abs", "fine"])
        try expectRefused(
            ws,
            .unsafeNames([
                Unsafe(path: "../up.jpg", reason: "has a '..' component", shard: "s.tar"),
                Unsafe(path: "/abs.jpg", reason: "is absolute", shard: "s.tar"),
            ]), split: "val")
        let report = try RawExport.run(
            ExportRequest(index: ws.index, out: ws.path + "/p", splits: ["val"]), layout: .packed)
        #expect(report.samples == 3)
        #expect(
            try tree(ws.path + "/p").keys.sorted() == ["val/", "val/jpg.bin", "val/jpg.offsets.npy", "val/keys.txt"])
        try expectPacked(
            ws.path + "/p/val",
            [
                RawSample(key: "../up", members: ["jpg": [1, 2]]), RawSample(key: "/abs", members: ["jpg": [3]]),
                RawSample(key: "fine", members: ["jpg": [4]]),
            ], extensions: ["jpg"])
        #expect(!exists(ws.path + "/up.jpg"))
    }

    @Test("two members that land on the same file, and a file that is also a folder, are refused naming both")
    func collisions() throws {
        let ws = try RawWorkspace([
            RawShard(name: "one.tar", members: [("./000001.jpg", [1]), ("x.jpg", [2]), ("b./y.png", [3])]),
            RawShard(
                name: "two.tar",
                members: [("000001.jpg", [4]), ("x.jpg/y.png", [5]), ("a./b.jpg", [6]), ("a.", [7]), ("b.", [8])]),
        ])
        try expectRefused(
            ws,
            .unsafeNames([
                Unsafe(
                    path: "000001.jpg",
                    reason: "is written to the same file '000001.jpg' as './000001.jpg' (in 'one.tar')",
                    shard: "two.tar"),
                Unsafe(path: "x.jpg", reason: "is also the folder of 'x.jpg/y.png' (in 'two.tar')", shard: "one.tar"),
                Unsafe(path: "a.", reason: "is also the folder of 'a./b.jpg' (in 'two.tar')", shard: "two.tar"),
                Unsafe(path: "b.", reason: "is also the folder of 'b./y.png' (in 'one.tar')", shard: "two.tar"),
            ]))
    }

    @Test("duplicate keys kept at ingest write the same file: refused naming both shards")
    func duplicateKeys() throws {
        let ws = try RawWorkspace(
            [
                RawShard(name: "one.tar", members: [("k.jpg", [1]), ("k.cls", [2])]),
                RawShard(name: "two.tar", members: [("k.jpg", [3])]),
            ], onDuplicate: .keep)
        try expectRefused(
            ws,
            .unsafeNames([
                Unsafe(
                    path: "k.jpg", reason: "is written to the same file 'k.jpg' as 'k.jpg' (in 'one.tar')",
                    shard: "two.tar")
            ]))
        // Packed has a line per sample: both are there.
        _ = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/p"), layout: .packed)
        #expect(try fileBytes(ws.path + "/p/keys.txt") == Array("k\nk\n".utf8))
        #expect(try fileBytes(ws.path + "/p/jpg.bin") == [1, 3])
    }

    @Test("'dir/.' names a folder; components over 255 bytes are refused; 255 bytes are written")
    func folderNamesAndLengths() throws {
        let long = String(repeating: "n", count: 252) + ".jpg"  // 256 bytes
        let fits = String(repeating: "f", count: 251) + ".jpg"  // 255 bytes
        let ws = try RawWorkspace(
            [RawShard(name: "n.tar", members: [("dir/.", [1]), ("d/\(long)", [2]), (fits, [3])])], format: .gnu)
        try expectRefused(
            ws,
            .unsafeNames([
                Unsafe(
                    path: "dir/.", reason: "ends in the component '.', which names a folder, not a file", shard: "n.tar"
                ),
                Unsafe(
                    path: "d/\(long)", reason: "has a component of 256 bytes (a file system allows at most 255)",
                    shard: "n.tar"),
            ]))
        let ok = try RawWorkspace([RawShard(name: "n.tar", members: [(fits, [3])])], format: .gnu)
        _ = try RawExport.run(ExportRequest(index: ok.index, out: ok.path + "/out"), layout: .files)
        #expect(try tree(ok.path + "/out") == [fits: [3]])
    }

    @Test("a NUL byte in a name (from a pax path record) is refused")
    func nulByte() throws {
        let directory = try TemporaryDirectory(prefix: "shardstore-raw")
        var tar = TarWriter(format: .pax)
        tar.addFile("ok.jpg", [1])
        tar.addFile("x.jpg", [2], paxRecords: [TarWriter.PaxRecord("path", bytes: Array("a\u{0}b/c.jpg".utf8))])
        tar.finish()
        try tar.write(to: directory.path + "/nul.tar")
        let index = directory.path + "/index.sqlite"
        _ = try Ingest.run(index: index, shards: [directory.path + "/nul.tar"])
        let error = thrown {
            _ = try RawExport.run(ExportRequest(index: index, out: directory.path + "/out"), layout: .files)
        }
        #expect(
            error as? ExportError
                == .unsafeNames([Unsafe(path: "a\\x00b/c.jpg", reason: "holds a NUL byte", shard: "nul.tar")]))
        #expect(!exists(directory.path + "/out"))
    }

    @Test("a key holding a line break is refused by the packed layout (keys.txt); the files layout writes it")
    func lineBreakKeys() throws {
        let ws = try RawWorkspace([
            RawShard(name: "nl.tar", members: [("a\nb.jpg", [1]), ("c\rd.jpg", [2]), ("e.jpg", [3])])
        ])
        try expectRefused(
            ws,
            .invalidArgument(
                "cannot write keys.txt: 2 keys hold a line break, and keys.txt has one key per line: 'a\\x0ab' (in 'nl.tar'), 'c\\x0dd' (in 'nl.tar'); nothing was written. Rename them in the shards, or export with --layout files"
            ), layout: .packed)
        _ = try RawExport.run(ExportRequest(index: ws.index, out: ws.path + "/f"), layout: .files)
        #expect(try tree(ws.path + "/f") == ["a\nb.jpg": [1], "c\rd.jpg": [2], "e.jpg": [3]])
    }

    @Test("a split whose name is not a plain folder name is refused")
    func splitNames() throws {
        let ws = try RawWorkspace([RawShard(name: "s.tar", members: [("a.jpg", [1])])])
        try ws.assign("..", keys: ["a"])
        try expectRefused(
            ws,
            .invalidArgument(
                "cannot export split '..' as a folder: its name has a '..' component; assign its samples to a split with a plain name (`shardstore split INDEX assign NAME ...`)"
            ), split: "..")
        try ws.assign("x/y", keys: ["a"])
        try expectRefused(
            ws,
            .invalidArgument(
                "cannot export split 'x/y' as a folder: its name holds a '/'; assign its samples to a split with a plain name (`shardstore split INDEX assign NAME ...`)"
            ), split: "x/y")
    }

    @Test("a symlink planted in the temporary folder while it is written is refused, never followed")
    func plantedSymlinks() throws {
        let ws = try RawWorkspace([
            RawShard(name: "s.tar", members: [("top.jpg", [9]), ("sub/000001.jpg", [1]), ("sub/000002.jpg", [2])])
        ])
        let outside = try TemporaryDirectory(prefix: "shardstore-outside")
        try Data([7]).write(to: URL(fileURLWithPath: outside.path + "/target.jpg"))
        let folder = ws.path
        let temporaries = Mutex<[String]>([])
        func plant(_ name: String, _ target: String, split: String? = nil) -> (any Error)? {
            thrown {
                _ = try RawExport.run(
                    ExportRequest(index: ws.index, out: ws.path + "/out", splits: split.map { [$0] } ?? []),
                    layout: .files,
                    progress: { p in
                        if p.phase == .writing, p.samplesDone == 0 {
                            let temporary = RawWorkspace.temporary(of: "out", in: folder)
                            temporaries.withLock { $0.append(temporary) }
                            _ = symlink(target, temporary + "/" + name)
                        }
                    })
            }
        }
        var temporary: String { temporaries.withLock { $0.last ?? "" } }
        // The advice fits a link planted by another process (not "rename them in the shards").
        let advice =
            "which the export did not make; another process changed the folder while the export ran, and nothing was published. Stop what writes there and run the export again, or choose another --out"
        // A folder replaced by a link to a folder outside.
        #expect(
            plant("sub", outside.path) as? ExportError
                == .invalidArgument(
                    "refusing to write 'sub/000001.jpg' (in 's.tar') into '\(temporary)': it crosses the symlink 'sub', \(advice)"
                ))
        // A file's name taken by a link to a file outside.
        #expect(
            plant("top.jpg", outside.path + "/target.jpg") as? ExportError
                == .invalidArgument(
                    "refusing to write 'top.jpg' (in 's.tar') into '\(temporary)': it meets the symlink 'top.jpg' where its file goes, \(advice)"
                ))
        // The split folder itself.
        try ws.assign("val", keys: ["top", "sub/000001"])
        #expect(
            plant("val", outside.path, split: "val") as? ExportError
                == .invalidArgument(
                    "refusing to write into '\(temporary)': the path crosses the symlink 'val', \(advice)"
                ))
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path) == ["target.jpg"])
        #expect(try fileBytes(outside.path + "/target.jpg") == [7])
        #expect(!exists(ws.path + "/out") && temporaries.withLock { $0.allSatisfy { !exists($0) } })
        #expect(temporaries.withLock { Set($0).count } == 3, "each export writes into a temporary of its own")
    }
}

import Foundation
import ShardStore
import ShardTestSupport
import Testing

@Suite("Raw export: existing output, cancellation and read failures leave nothing behind")
struct RawExportFailureTests {
    @Test("cancelled after some samples: neither the output nor the temporary is left", arguments: RawLayout.allCases)
    func cancelled(layout: RawLayout) throws {
        let ws = try RawWorkspace.standard()
        let calls = Flag()
        let sawTemporary = Flag()
        let folder = ws.path
        let error = thrown {
            _ = try RawExport.run(
                ExportRequest(index: ws.index, out: ws.path + "/out"), layout: layout,
                isCancelled: {
                    let n = calls.increment()
                    // Four samples are in the temporary by then.
                    if n == 5, (try? tree(RawWorkspace.temporary(of: "out", in: folder)).isEmpty) == false {
                        _ = sawTemporary.increment()
                    }
                    return n > 4
                })
        }
        #expect(error as? ExportError == .cancelled)
        #expect(calls.count == 5)
        #expect(sawTemporary.count == 1)
        #expect(!exists(ws.path + "/out") && !exists(ws.temporary(of: "out")))
        #expect(try ws.listing() == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations"])
    }

    @Test("a shard truncated after the dataset opened it (pread): the read error names it; nothing is left")
    func truncatedShard() throws {
        let ws = try RawWorkspace.standard()
        let shard = ws.path + "/b.tar"
        let size = try fileBytes(shard).count
        for layout in RawLayout.allCases {
            let error = thrown {
                _ = try RawExport.run(
                    ExportRequest(index: ws.index, out: ws.path + "/out", strategy: .pread), layout: layout,
                    progress: { p in
                        if p.phase == .writing, p.samplesDone == 0 { _ = truncate(shard, 2560) }
                    })
            }
            // b.tar's first sample (.JPG at 512, 700 bytes; .cls at 2048) lies within the 2560 bytes
            // kept; the second's .JPG (705 bytes at 3072) and .cls (1 byte) are one 2049-byte read
            // from 2560, the .JPG's own header. The error names the shard's real path and its size now.
            #expect(
                "\(error.map { "\($0)" } ?? "no error")"
                    == "cannot read '\(try Paths.real(shard))' (the shard ends at byte 2560 but 2049 bytes are needed from offset 2560; it was truncated after the dataset was opened: run `shardstore ingest` again)",
                "\(layout)")
            #expect(!exists(ws.path + "/out") && !exists(ws.temporary(of: "out")))
            // Restore the shard's size and time for the next layout: rewrite it from the fixture.
            var tar = TarWriter(format: .ustar)
            for m in ws.shards[1].members { tar.addFile(m.name, m.bytes) }
            tar.finish()
            try tar.write(to: shard)
            #expect(tar.bytes.count == size)
            _ = try Ingest.run(index: ws.index, shards: [ws.path + "/a.tar", shard])
        }
    }

    @Test("an existing output folder is refused without overwrite and replaced whole with it")
    func existingOutput() throws {
        let ws = try RawWorkspace.standard()
        let out = ws.path + "/out"
        try FileManager.default.createDirectory(atPath: out + "/old", withIntermediateDirectories: true)
        try Data([1]).write(to: URL(fileURLWithPath: out + "/old/file"))
        let refused = thrown { _ = try RawExport.run(ExportRequest(index: ws.index, out: out), layout: .files) }
        #expect(refused as? ExportError == .outputExists(path: out))
        #expect(try tree(out) == ["old/": [], "old/file": [1]])
        _ = try RawExport.run(ExportRequest(index: ws.index, out: out, overwrite: true), layout: .files)
        #expect(try tree(out) == expectedFiles(ws.samples))
        _ = try RawExport.run(
            ExportRequest(index: ws.index, out: out, extensions: ["cls"], overwrite: true), layout: .packed)
        try expectPacked(out, ws.samples, extensions: ["cls"])
        #expect(try ws.listing() == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations", "out"])
        // A file where the folder goes is not replaced.
        try Data([2]).write(to: URL(fileURLWithPath: ws.path + "/file"))
        let file = thrown {
            _ = try RawExport.run(
                ExportRequest(index: ws.index, out: ws.path + "/file", overwrite: true), layout: .files)
        }
        #expect(
            file as? ExportError
                == .invalidArgument(
                    "cannot replace '\(ws.path)/file': it is a file, and this export writes a folder; remove it or choose another --out"
                ))
    }

    @Test("an output that holds the inputs is refused, even with overwrite")
    func outputIsInput() throws {
        let ws = try RawWorkspace.standard()
        let error = thrown {
            _ = try RawExport.run(ExportRequest(index: ws.index, out: ws.path, overwrite: true), layout: .files)
        }
        #expect(error as? ExportError == .outputIsInput(path: ws.path, input: ws.index))
        #expect(try ws.listing() == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations"])
    }

    @Test("an unknown split, two splits, an unknown extension: refused before anything is written")
    func badArguments() throws {
        let ws = try RawWorkspace.standard()
        try ws.assign("val", keys: ["000001"])
        func failure(_ request: ExportRequest) -> String {
            let error = thrown { _ = try RawExport.run(request, layout: .files) }
            return error.map { "\($0)" } ?? "no error"
        }
        #expect(
            failure(ExportRequest(index: ws.index, out: ws.path + "/out", splits: ["test"]))
                == "no split named 'test' (splits: val)")
        #expect(
            failure(ExportRequest(index: ws.index, out: ws.path + "/out", splits: ["val", "test"]))
                == "a raw export writes one split at a time (given: 'val', 'test'); run one export per split")
        #expect(
            failure(ExportRequest(index: ws.index, out: ws.path + "/out", extensions: ["png"]))
                == "no member has extension '.png' (extensions: .cls, .jpg, .seg.png)")
        #expect(
            failure(ExportRequest(index: ws.path + "/none.sqlite", out: ws.path + "/out"))
                == "index '\(ws.path)/none.sqlite' does not exist; create it with `shardstore ingest \(ws.path)/none.sqlite SHARD...`"
        )
        #expect(try ws.listing() == ["a.tar", "b.tar", "index.sqlite", "index.sqlite-locations"])
    }
}

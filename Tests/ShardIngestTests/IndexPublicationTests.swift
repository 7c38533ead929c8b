import Foundation
import ShardStore
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A new index is built in a file the atomic-file facility created (exclusive, unpredictable
/// name, opened by SQLite without following links) and published with a link that refuses an
/// index that appeared meanwhile.
@Suite("Ingest: building and publishing a new index")
struct IndexPublicationTests {
    @Test("a stale partial index of the new form, with its journal, is removed and reported once")
    func staleNewForm() throws {
        let dir = try TemporaryDirectory()
        try writeShard(dir.path + "/good.tar", [("g.jpg", [1])])
        var pid: Int32 = 4_000_000
        while kill(pid, 0) == 0 || errno == EPERM { pid -= 1 }
        let stale = dir.path + "/.index.sqlite.shardstore-partial-\(pid)-0123456789abcdef"
        try writeBytes([1, 2, 3], to: stale)
        try writeBytes([4], to: stale + "-journal")
        let report = try Ingest.run(index: dir.path + "/index.sqlite", shards: [dir.path + "/good.tar"])
        #expect(report.removedPartials == [stale])
        #expect(try listing(dir.path) == ["good.tar", "index.sqlite", "index.sqlite-locations"])
    }

    @Test("an index that appears while the new one is built is kept; the ingest fails and leaves nothing")
    func appearedMeanwhile() throws {
        let dir = try TemporaryDirectory()
        let index = dir.path + "/index.sqlite"
        try writeShard(dir.path + "/good.tar", [("g.jpg", [1])])
        let options = IngestOptions(progress: { _ in
            var st = stat()
            if stat(index, &st) != 0 { try? writeBytes(Array("someone else's".utf8), to: index) }
        })
        let error = try #require(
            caught { _ = try Ingest.run(index: index, shards: [dir.path + "/good.tar"], options: options) })
        #expect(
            "\(error)"
                == "index '\(index)': another process created the index while this ingest ran; run the ingest again to add to it"
        )
        #expect(try readBytes(index) == Array("someone else's".utf8))
        #expect(try listing(dir.path) == ["good.tar", "index.sqlite"])
    }

    @Test("a new index in a folder reached through a symbolic link is built and published")
    func symlinkedFolder() throws {
        let dir = try TemporaryDirectory()
        #expect(mkdir(dir.path + "/real", 0o755) == 0)
        #expect(symlink(dir.path + "/real", dir.path + "/link") == 0)
        try writeShard(dir.path + "/real/good.tar", [("g.jpg", [1]), ("h.jpg", [2])])
        let report = try Ingest.run(index: dir.path + "/link/index.sqlite", shards: [dir.path + "/link/good.tar"])
        #expect(report.totalSamples == 2 && report.createdIndex)
        #expect(try listing(dir.path + "/real") == ["good.tar", "index.sqlite", "index.sqlite-locations"])
    }
}

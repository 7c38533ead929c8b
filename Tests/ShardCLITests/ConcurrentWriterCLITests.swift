import Foundation
import ShardTestSupport
import Testing

/// Readers beside a writer in another process: a live writer's journal is not an interrupted
/// ingest; a dead writer's journal is rolled back.
@Suite("shardstore: readers beside a live writer, and after a killed one", .serialized)
struct ConcurrentWriterCLITests {
    static func indexed() throws -> Workspace {
        let w = try Workspace(shards: 3)
        try w.ingestAll()
        return w
    }

    @Test("a writer holding the index locked past the busy timeout: 'another process is writing this index'")
    func lockedByWriter() throws {
        let w = try Self.indexed()
        let writer = try SQLiteWriterProcess(path: w.file("index.sqlite"), lock: .exclusive, holdSeconds: 60)
        #expect(FileManager.default.fileExists(atPath: w.file("index.sqlite-journal")))
        let start = Date()
        try expectFailure(
            ["info", "index.sqlite"], in: w.path,
            message:
                "index 'index.sqlite': another process is writing this index (waited 5 s for it); try again when it has finished"
        )
        #expect(Date().timeIntervalSince(start) >= 4.5, "the reader must wait for the busy timeout first")
        // A writer command waits and says the same.
        try expectFailure(
            ["split", "index.sqlite", "assign", "val", "--shards", "*"], in: w.path,
            message:
                "index 'index.sqlite': another process is writing this index (waited 5 s for it); try again when it has finished"
        )
        writer.stop()
        // Killed before it synced its journal (so the file itself was never changed): the journal
        // left behind is not hot, and readers go on.
        #expect(FileManager.default.fileExists(atPath: w.file("index.sqlite-journal")))
        let info = try expectRun(["info", "index.sqlite", "--json"], in: w.path, stderr: "")
        #expect(int(try jsonObject(info.stdoutText)["samples"]) == 12)
    }

    @Test("a writer that commits within the busy timeout is waited for")
    func writerCommitsSoon() throws {
        let w = try Self.indexed()
        let writer = try SQLiteWriterProcess(path: w.file("index.sqlite"), lock: .exclusive, holdSeconds: 1)
        try expectRun(["meta", "index.sqlite", "get", "test.writer"], in: w.path, stdout: "1\n", stderr: "")
        writer.wait()
    }

    @Test("a writer still working (reserved lock, journal present): readers read the committed index at once")
    func writerWorking() throws {
        let w = try Self.indexed()
        let writer = try SQLiteWriterProcess(path: w.file("index.sqlite"), lock: .reserved, holdSeconds: 60)
        #expect(FileManager.default.fileExists(atPath: w.file("index.sqlite-journal")))
        let start = Date()
        let info = try expectRun(["info", "index.sqlite", "--json"], in: w.path, stderr: "")
        #expect(int(try jsonObject(info.stdoutText)["samples"]) == 12)
        try expectRun(["cat", "index.sqlite", "--ext", "json", "--lookup", "statements"], in: w.path, stderr: "")
        #expect(Date().timeIntervalSince(start) < 4, "a working writer must not make readers wait")
        #expect(
            FileManager.default.fileExists(atPath: w.file("index.sqlite-journal")), "the writer's journal was touched")
        writer.stop()
    }

    @Test("kill -9 of a writer that changed the file: the next reader restores the index byte for byte")
    func hotJournal() throws {
        let w = try Self.indexed()
        let before = try #require(try w.bytes("index.sqlite"))
        try SQLiteWriterProcess.killMidTransaction(path: w.file("index.sqlite"))
        #expect(FileManager.default.fileExists(atPath: w.file("index.sqlite-journal")))
        #expect(try w.bytes("index.sqlite") != before, "the killed writer should have changed the file itself")
        let info = try expectRun(["info", "index.sqlite", "--json"], in: w.path, stderr: "")
        #expect(int(try jsonObject(info.stdoutText)["samples"]) == 12)
        #expect(try w.bytes("index.sqlite") == before)
        #expect(!FileManager.default.fileExists(atPath: w.file("index.sqlite-journal")))
    }

    @Test("a hot journal beside a read-only index: say an interrupted write must be rolled back")
    func hotJournalReadOnly() throws {
        let w = try Self.indexed()
        let before = try #require(try w.bytes("index.sqlite"))
        try SQLiteWriterProcess.killMidTransaction(path: w.file("index.sqlite"))
        let result = try runReadOnly(["info", "index.sqlite"], in: w)
        #expect(result.status == 1)
        #expect(
            wholeMatch(
                result.stderrText,
                literal(
                    "shardstore: error: index 'index.sqlite': an interrupted write (a killed ingest, split or meta command) left 'index.sqlite-journal', which must be rolled back before the index can be read, but the index cannot be opened for writing ("
                ) + "SQLite error 8 \\(readonly[^\n]*"
                    + literal(
                        "); make the index and its folder writable and run any shardstore command once\n")),
            "\(result.stderrText)")
        // Writable again: the next command rolls it back.
        try expectRun(["info", "index.sqlite", "--json"], in: w.path, stderr: "")
        #expect(try w.bytes("index.sqlite") == before)
    }
}

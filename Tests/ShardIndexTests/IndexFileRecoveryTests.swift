import Foundation
import ShardIndex
import ShardTestSupport
import Testing

/// A reader meeting `INDEX-journal`: a live writer's journal is waited for or read beside, a dead
/// writer's (hot) journal is rolled back. Only SQLite's locks tell them apart.
@Suite("IndexFile: live writers and hot journals", .serialized)
struct IndexFileRecoveryTests {
    /// A fresh index (schema only) with one metadata entry, in `dir`.
    static func makeIndex(in dir: String) throws -> String {
        let path = dir + "/index.sqlite"
        let db = try Database(path: path, mode: .readWriteCreate)
        try IndexFile.migrator.migrate(db)
        try db.execute("INSERT INTO metadata(key, value) VALUES ('before', '1')")
        db.close()
        return path
    }

    static func journalExists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "-journal")
    }

    @Test("a writer holding its exclusive lock past the busy timeout: 'another process is writing this index'")
    func exclusiveWriter() throws {
        try withSQLiteScratchDirectory { dir in
            let path = try Self.makeIndex(in: dir)
            // A writer on another connection that has spilled its cache or is committing.
            let writer = try Database(path: path, mode: .readWrite)
            try writer.execute("BEGIN EXCLUSIVE")
            try writer.execute("INSERT INTO metadata(key, value) VALUES ('during', '1')")
            #expect(Self.journalExists(path))
            let start = Date()
            let error = #expect(throws: IndexFileError.self) { _ = try IndexReader(path: path) }
            #expect(Date().timeIntervalSince(start) >= 4.5, "it must wait for the busy timeout")
            #expect(
                error?.description
                    == "index '\(path)': another process is writing this index (waited 5 s for it); try again when it has finished"
            )
            try writer.execute("ROLLBACK")
            #expect(try IndexReader(path: path).metadata().map(\.key) == ["before"])
        }
    }

    @Test("a writer that commits within the busy timeout is waited for, and its work is read")
    func writerFinishesWhileWaited() throws {
        try withSQLiteScratchDirectory { dir in
            let path = try Self.makeIndex(in: dir)
            let locked = DispatchSemaphore(value: 0)
            let thread = Thread {
                do {
                    let writer = try Database(path: path, mode: .readWrite)
                    try writer.execute("BEGIN EXCLUSIVE")
                    try writer.execute("INSERT INTO metadata(key, value) VALUES ('during', '1')")
                    locked.signal()
                    Thread.sleep(forTimeInterval: 1)
                    try writer.execute("COMMIT")
                } catch {
                    Issue.record("writer: \(error)")
                    locked.signal()
                }
            }
            thread.start()
            locked.wait()
            #expect(Self.journalExists(path))
            let reader = try IndexReader(path: path)
            #expect(try reader.metadata().map(\.key).sorted() == ["before", "during"])
        }
    }

    @Test("a writer that holds only its reserved lock: readers read the committed index at once")
    func reservedWriter() throws {
        try withSQLiteScratchDirectory { dir in
            let path = try Self.makeIndex(in: dir)
            let writer = try Database(path: path, mode: .readWrite)
            try writer.execute("BEGIN IMMEDIATE")
            try writer.execute("INSERT INTO metadata(key, value) VALUES ('during', '1')")
            #expect(Self.journalExists(path))
            let start = Date()
            #expect(try IndexReader(path: path).metadata().map(\.key) == ["before"])
            #expect(Date().timeIntervalSince(start) < 2)
            #expect(Self.journalExists(path), "the live writer's journal must be left alone")
            try writer.execute("COMMIT")
            #expect(try IndexReader(path: path).metadata().map(\.key).sorted() == ["before", "during"])
        }
    }

    @Test("a writer killed with SIGKILL mid-transaction leaves a hot journal, which the next reader rolls back")
    func hotJournalRolledBack() throws {
        try withSQLiteScratchDirectory { dir in
            let path = try Self.makeIndex(in: dir)
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            try SQLiteWriterProcess.killMidTransaction(path: path)
            #expect(Self.journalExists(path))
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: path)) != before,
                "the killed writer should have changed the file itself (spilled its cache)")
            let reader = try IndexReader(path: path)
            #expect(try reader.metadata().map(\.key) == ["before"])
            #expect(!Self.journalExists(path))
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        }
    }
}

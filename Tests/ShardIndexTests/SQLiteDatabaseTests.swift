import Foundation
import Testing

@testable import ShardIndex

/// Runs `body` with the path of a new empty folder, removed afterwards.
func withSQLiteScratchDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("shardindex-sqlite-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

private struct BodyFailure: Error, Equatable {}

@Suite("SQLite Database")
struct SQLiteDatabaseTests {
    @Test("a UNIQUE violation reports code, extended code, message, SQL and path")
    func constraintError() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/index.sqlite"
            let db = try Database(path: path, mode: .readWriteCreate)
            try db.execute("CREATE TABLE t(x INTEGER UNIQUE)")
            let insert = "INSERT INTO t(x) VALUES (?)"
            try db.cachedStatement(insert).execute([1])
            let error = #expect(throws: SQLiteError.self) {
                try db.cachedStatement(insert).execute([1])
            }
            #expect(error?.code == .constraint)
            #expect(error?.code.rawValue == 19)
            #expect(error?.extendedCode == .constraintUnique)
            #expect(error?.extendedCode.primary == .constraint)
            #expect(error?.message == "UNIQUE constraint failed: t.x")
            #expect(error?.sql == insert)
            #expect(error?.path == path)
            #expect(
                error?.description
                    == "SQLite error 19 (constraint): UNIQUE constraint failed: t.x (in `INSERT INTO t(x) VALUES (?)`) [\(path)]"
            )
            #expect(try db.scalarInt("SELECT count(*) FROM t") == 1)
        }
    }

    /// Classifies a code with `switch`, as callers would.
    static func kind(of code: ResultCode) -> String {
        switch code {
        case .constraintUnique: "unique"
        case .constraintNotNull: "not null"
        case .constraint: "another constraint"
        default: "not a constraint"
        }
    }

    @Test("result codes match with == on the primary code and ~= on extended codes")
    func resultCodeMatching() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(x INTEGER NOT NULL)")
        let error = #expect(throws: SQLiteError.self) {
            try db.execute("INSERT INTO t(x) VALUES (NULL)")
        }
        guard let error else { return }
        #expect(error.code == .constraint)
        #expect(Self.kind(of: error.extendedCode) == "not null")
        #expect(Self.kind(of: .constraintUnique) == "unique")
        #expect(Self.kind(of: .constraintCheck) == "another constraint")
        #expect(Self.kind(of: .busy) == "not a constraint")
        let primaryMatches = ResultCode.constraint ~= error.extendedCode
        let uniqueMatches = ResultCode.constraintUnique ~= error.extendedCode
        #expect(primaryMatches)
        #expect(!uniqueMatches)
        #expect(error.extendedCode.description == "constraint (19/1299)")

        // Around typed-throwing calls the error is already an SQLiteError: `catch where` reads
        // naturally. (Keep such a do/catch exhaustive: Swift 6.3.1 crashes on a non-exhaustive
        // typed catch that assigns a captured `var`.)
        func failsWithConstraint() -> Bool {
            do {
                try db.execute("INSERT INTO t(x) VALUES (NULL)")
                return false
            } catch  where error.code == .constraint {
                return true
            } catch {
                return false
            }
        }
        #expect(failsWithConstraint())
    }

    @Test("inTransaction commits when the body returns")
    func transactionCommits() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(x)")
        let id = try db.inTransaction { () throws -> Int64 in
            #expect(db.isInTransaction)
            try db.cachedStatement("INSERT INTO t(x) VALUES (?)").execute(["a"])
            return db.lastInsertRowID
        }
        #expect(id == 1)
        #expect(!db.isInTransaction)
        #expect(try db.scalarText("SELECT x FROM t") == "a")
    }

    @Test("inTransaction rolls back and rethrows the body's error, leaving data unchanged")
    func transactionRollsBack() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(x); INSERT INTO t(x) VALUES (1)")
        #expect(throws: BodyFailure()) {
            try db.inTransaction {
                try db.execute("INSERT INTO t(x) VALUES (2); UPDATE t SET x = x * 10")
                #expect(try db.scalarInt("SELECT sum(x) FROM t") == 30)
                throw BodyFailure()
            }
        }
        #expect(!db.isInTransaction)
        #expect(try db.scalarInt("SELECT sum(x) FROM t") == 1)
        #expect(try db.scalarInt("SELECT count(*) FROM t") == 1)
    }

    @Test("a failing COMMIT (deferred foreign key) is rolled back and thrown")
    func failingCommitRollsBack() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute(
            """
            CREATE TABLE parent(id INTEGER PRIMARY KEY);
            CREATE TABLE child(parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
            """
        )
        let error = #expect(throws: SQLiteError.self) {
            try db.inTransaction(.deferred) {
                try db.execute("INSERT INTO child(parent_id) VALUES (42)")
            }
        }
        #expect(error?.code == .constraint)
        #expect(error?.sql == "COMMIT")
        #expect(!db.isInTransaction)
        #expect(try db.scalarInt("SELECT count(*) FROM child") == 0)
    }

    @Test("foreign keys are on")
    func foreignKeysOn() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        #expect(try db.scalarInt("PRAGMA foreign_keys") == 1)
        try db.execute(
            "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id))")
        let error = #expect(throws: SQLiteError.self) { try db.execute("INSERT INTO c(p) VALUES (1)") }
        #expect(error?.extendedCode == .constraintForeignKey)
    }

    @Test("cachedStatement returns the same statement, reset and with bindings cleared")
    func statementCache() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(x); INSERT INTO t(x) VALUES (1), (2), (3)")
        let sql = "SELECT x, ? FROM t ORDER BY x"
        let first = try db.cachedStatement(sql)
        try first.bind(7, at: 1)
        #expect(try first.step())
        #expect(try first.step())
        #expect(first.int64(at: 0) == 2)
        #expect(first.int64(at: 1) == 7)

        let second = try db.cachedStatement(sql)
        #expect(first === second)
        #expect(try second.step())
        #expect(second.int64(at: 0) == 1)
        #expect(second.isNull(at: 1))
        #expect(try db.cachedStatement("SELECT 1") !== second)
    }

    @Test("a read-only connection cannot write")
    func readOnlyCannotWrite() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/ro.sqlite"
            do {
                let db = try Database(path: path, mode: .readWriteCreate)
                try db.execute("CREATE TABLE t(x); INSERT INTO t(x) VALUES (1)")
            }
            let db = try Database(path: path, mode: .readOnly)
            #expect(try db.scalarInt("SELECT x FROM t") == 1)
            let error = #expect(throws: SQLiteError.self) {
                try db.execute("INSERT INTO t(x) VALUES (2)")
            }
            #expect(error?.code == .readonly)
            #expect(error?.message == "attempt to write a readonly database")
            #expect(error?.path == path)
            #expect(try db.scalarInt("SELECT count(*) FROM t") == 1)
        }
    }

    @Test("opening a missing file read-only or read-write fails with cantOpen naming the path")
    func missingFile() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/missing.sqlite"
            for mode in [Database.Mode.readOnly, .readWrite] {
                let error = #expect(throws: SQLiteError.self) { _ = try Database(path: path, mode: mode) }
                #expect(error?.code == .cantOpen)
                #expect(
                    error?.description == "SQLite error 14 (cantopen): unable to open database file [\(path)]"
                )
            }
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test("a second writer gets .busy when its timeout is 0")
    func busy() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/busy.sqlite"
            let first = try Database(path: path, mode: .readWriteCreate)
            try first.execute("CREATE TABLE t(x)")
            let second = try Database(path: path, mode: .readWrite)
            try second.setBusyTimeout(milliseconds: 0)
            try first.inTransaction {
                do {
                    try second.inTransaction { try second.execute("INSERT INTO t(x) VALUES (1)") }
                    Issue.record("the second writer should be refused")
                } catch let error as SQLiteError where error.code == .busy {
                    #expect(error.message == "database is locked")
                    #expect(error.sql == "BEGIN IMMEDIATE")
                }
            }
            #expect(!second.isInTransaction)
            try second.inTransaction { try second.execute("INSERT INTO t(x) VALUES (1)") }
            #expect(try first.scalarInt("SELECT count(*) FROM t") == 1)
        }
    }

    @Test("execute runs every statement and names the one that failed")
    func executeScript() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute(
            """
            -- a comment first
            CREATE TABLE a(x);
            INSERT INTO a VALUES (1); /* block */ INSERT INTO a VALUES (2);
            PRAGMA user_version = 5;
            -- a trailing comment
            """
        )
        #expect(try db.scalarInt("SELECT sum(x) FROM a") == 3)
        #expect(try db.scalarInt("PRAGMA user_version") == 5)
        let runtime = #expect(throws: SQLiteError.self) {
            try db.execute(
                "INSERT INTO a VALUES (3);\n  INSERT INTO a VALUES (abs(-9223372036854775807 - 1));\nSELECT 1"
            )
        }
        #expect(runtime?.message == "integer overflow")
        #expect(runtime?.sql == "INSERT INTO a VALUES (abs(-9223372036854775807 - 1));")
        let syntax = #expect(throws: SQLiteError.self) { try db.execute("SELECT 1; SELEC 2;") }
        #expect(syntax?.code == .error)
        #expect(syntax?.message == "near \"SELEC\": syntax error")
        #expect(syntax?.sql == "SELEC 2;")
        #expect(try db.scalarInt("SELECT count(*) FROM a") == 3)
    }

    @Test("changes and lastInsertRowID")
    func changesAndRowID() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, x)")
        try db.cachedStatement("INSERT INTO t(id, x) VALUES (?, ?)").execute([41, "a"])
        #expect(db.lastInsertRowID == 41)
        try db.execute("INSERT INTO t(x) VALUES ('b'), ('c')")
        #expect(db.changes == 2)
        #expect(db.lastInsertRowID == 43)
        try db.cachedStatement("UPDATE t SET x = ? WHERE id > ?").execute(["z", 0])
        #expect(db.changes == 3)
    }

    @Test("scalarInt and scalarText return nil for no row and for NULL, and check the argument count")
    func scalars() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(k TEXT, v)")
        try db.cachedStatement("INSERT INTO t VALUES (?, ?)").execute(["a", .null])
        try db.cachedStatement("INSERT INTO t VALUES (?, ?)").execute(["b", 2])
        #expect(try db.scalarInt("SELECT v FROM t WHERE k = ?", "a") == nil)
        #expect(try db.scalarInt("SELECT v FROM t WHERE k = ?", "b") == 2)
        #expect(try db.scalarInt("SELECT v FROM t WHERE k = ?", "zz") == nil)
        #expect(try db.scalarText("SELECT k FROM t WHERE v = ?", .integer(2)) == "b")
        #expect(try db.scalarText("SELECT v FROM t WHERE k = ?", "a") == nil)
        let error = #expect(throws: SQLiteError.self) {
            _ = try db.scalarInt("SELECT v FROM t WHERE k = ?")
        }
        #expect(error?.code == .range)
        #expect(error?.message == "expected 1 argument, got 0")
    }

    @Test("a closed database throws misuse, and closing twice is harmless")
    func closed() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        let statement = try db.cachedStatement("SELECT 1")
        db.close()
        db.close()
        #expect(db.isClosed)
        let error = #expect(throws: SQLiteError.self) { try db.execute("SELECT 1") }
        #expect(error?.code == .misuse)
        #expect(error?.description == "SQLite error 21 (misuse): the database is closed [:memory:]")
        #expect(throws: SQLiteError.self) { _ = try statement.step() }
    }
}

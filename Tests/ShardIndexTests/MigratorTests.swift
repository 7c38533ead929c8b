import Foundation
import Testing

@testable import ShardIndex

@Suite("Migrator")
struct MigratorTests {
    static let first = Migration(
        version: 1, name: "initial", sql: "CREATE TABLE a(x INTEGER NOT NULL);\n")
    static let second = Migration(
        version: 2,
        name: "add_b",
        sql: "CREATE TABLE b(y TEXT);\nINSERT INTO a(x) VALUES (1);\n"
    )
    static let third = Migration(version: 3, name: "add_index", sql: "CREATE INDEX b_y ON b(y);")

    private func tables(_ db: Database) throws -> [String] {
        let statement = try db.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        var names: [String] = []
        while try statement.step() { names.append(statement.text(at: 0)) }
        return names
    }

    @Test("applies migrations in order, records them, sets user_version, and is idempotent")
    func appliesInOrder() throws {
        try withSQLiteScratchDirectory { dir in
            let db = try Database(path: dir + "/index.sqlite", mode: .readWriteCreate)
            let migrator = Migrator([Self.first, Self.second])
            #expect(try migrator.appliedVersions(db) == [])
            #expect(try migrator.migrate(db) == [1, 2])
            #expect(try migrator.appliedVersions(db) == [1, 2])
            #expect(try db.scalarInt("PRAGMA user_version") == 2)
            #expect(try tables(db) == ["a", "b", "schema_migrations"])
            #expect(try db.scalarInt("SELECT x FROM a") == 1)  // 2 ran after 1
            let names = try db.prepare(
                "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
            var rows: [String] = []
            while try names.step() {
                rows.append("\(names.int(at: 0)) \(names.text(at: 1))")
                #expect(names.text(at: 2).count == "2026-01-01T00:00:00Z".count)
                #expect(names.text(at: 2).hasSuffix("Z"))
            }
            #expect(rows == ["1 initial", "2 add_b"])

            #expect(try migrator.migrate(db) == [])
            #expect(try db.scalarInt("SELECT count(*) FROM a") == 1)

            let longer = Migrator([Self.first, Self.second, Self.third])
            #expect(try longer.migrate(db) == [3])
            #expect(try longer.appliedVersions(db) == [1, 2, 3])
            #expect(try db.scalarInt("PRAGMA user_version") == 3)
            try longer.check(db)
        }
    }

    @Test("refuses a database from the future with the exact message, before applying anything")
    func refusesFutureDatabase() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/index.sqlite"
            do {
                let db = try Database(path: path, mode: .readWriteCreate)
                try Migrator([Self.first]).migrate(db)
                // A newer build recorded schema 7.
                try db.cachedStatement("INSERT INTO schema_migrations VALUES (?, ?, ?)")
                    .execute([7, "from_the_future", "2030-01-01T00:00:00Z"])
            }
            let expected = SchemaError.newerSchema(path: path, found: 7, known: 3)
            let message =
                "\(path) was written by a newer ShardStore (schema 7; this build knows up to 3); upgrade shardstore to read it"
            #expect(expected.description == message)

            let migrator = Migrator([Self.first, Self.second, Self.third])
            let db = try Database(path: path, mode: .readWrite)
            #expect(throws: expected) { try migrator.migrate(db) }
            #expect(try tables(db) == ["a", "schema_migrations"])
            #expect(try migrator.appliedVersions(db) == [1, 7])

            let reader = try Database(path: path, mode: .readOnly)
            #expect(throws: expected) { try migrator.check(reader) }
        }
    }

    @Test("a user_version newer than the build is refused too")
    func refusesFutureUserVersion() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try Migrator([Self.first]).migrate(db)
        try db.execute("PRAGMA user_version = 9")
        #expect(throws: SchemaError.newerSchema(path: ":memory:", found: 9, known: 2)) {
            try Migrator([Self.first, Self.second]).migrate(db)
        }
        #expect(try tables(db) == ["a", "schema_migrations"])
    }

    @Test("a failing migration is rolled back alone and named by its file")
    func failingMigrationRollsBack() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/index.sqlite"
            let db = try Database(path: path, mode: .readWriteCreate)
            let bad = Migration(
                version: 2,
                name: "bad",
                sql: "CREATE TABLE b(y);\nINSERT INTO a(x) VALUES (5);\nINSERT INTO nope VALUES (1);\n"
            )
            let migrator = Migrator([Self.first, bad, Self.third])
            let error = #expect(throws: SchemaError.self) { try migrator.migrate(db) }
            guard case .migrationFailed(let failedPath, let file, let underlying)? = error else {
                Issue.record("expected migrationFailed, got \(String(describing: error))")
                return
            }
            #expect(failedPath == path)
            #expect(file == "0002_bad.sql")
            #expect(underlying.code == .error)
            #expect(underlying.message == "no such table: nope")
            #expect(
                error?.description
                    == "migration 0002_bad.sql failed on \(path) and was rolled back (earlier migrations stay applied): "
                    + "SQLite error 1 (error): no such table: nope (in `INSERT INTO nope VALUES (1);`) [\(path)]"
            )
            #expect(!db.isInTransaction)
            #expect(try migrator.appliedVersions(db) == [1])
            #expect(try db.scalarInt("PRAGMA user_version") == 1)
            #expect(try tables(db) == ["a", "schema_migrations"])
            #expect(try db.scalarInt("SELECT count(*) FROM a") == 0)

            // Fixed, the same database migrates on.
            #expect(try Migrator([Self.first, Self.second, Self.third]).migrate(db) == [2, 3])
        }
    }

    @Test("a migration may not commit or roll back the migrator's transaction")
    func transactionControlIsRefused() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        let sneaky = Migration(
            version: 1, name: "sneaky", sql: "CREATE TABLE a(x);\nCOMMIT;\nCREATE TABLE c(x);\n")
        let error = #expect(throws: SchemaError.self) { try Migrator([sneaky]).migrate(db) }
        guard case .migrationFailed(_, let file, let underlying)? = error else {
            Issue.record("expected migrationFailed, got \(String(describing: error))")
            return
        }
        #expect(file == "0001_sneaky.sql")
        #expect(underlying.code == .auth)
        #expect(underlying.sql == "COMMIT;")
        #expect(try tables(db) == ["schema_migrations"])
        #expect(try Migrator([sneaky]).appliedVersions(db) == [])
        // The authorizer is gone afterwards.
        try db.inTransaction { try db.execute("CREATE TABLE d(x)") }
    }

    @Test("check accepts an up-to-date database and refuses an outdated one with the exact message")
    func checkOutdated() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/index.sqlite"
            do {
                let db = try Database(path: path, mode: .readWriteCreate)
                try Migrator([Self.first]).migrate(db)
            }
            let reader = try Database(path: path, mode: .readOnly)
            try Migrator([Self.first]).check(reader)
            let error = #expect(throws: SchemaError.outdatedSchema(path: path, found: 1, known: 3)) {
                try Migrator([Self.first, Self.second, Self.third]).check(reader)
            }
            #expect(
                error?.description
                    == "\(path) has an older schema (schema 1; this build needs 3); run `shardstore ingest` with this version to upgrade"
            )
        }
    }

    @Test("check calls an empty file not an index (not an outdated one) and writes nothing")
    func checkEmptyFile() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/empty.sqlite"
            _ = FileManager.default.createFile(atPath: path, contents: Data())
            let reader = try Database(path: path, mode: .readOnly)
            let error = #expect(throws: SchemaError.emptyDatabase(path: path)) {
                try Migrator([Self.first]).check(reader)
            }
            #expect(
                error?.description
                    == "\(path) is not a ShardStore index: it holds no database (the file is empty, or too short to hold one); pass the index.sqlite that `shardstore ingest` wrote, or make an index there with `shardstore ingest \(path) SHARD...`"
            )
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 0)
        }
    }

    @Test("a database with foreign tables, or a file that is not SQLite, is not a ShardStore index")
    func notAShardStoreIndex() throws {
        try withSQLiteScratchDirectory { dir in
            let foreign = dir + "/foreign.sqlite"
            do {
                let db = try Database(path: foreign, mode: .readWriteCreate)
                try db.execute("CREATE TABLE photos(id INTEGER PRIMARY KEY)")
            }
            let migrator = Migrator([Self.first])
            let db = try Database(path: foreign, mode: .readWrite)
            #expect(throws: SchemaError.notAShardStoreIndex(path: foreign)) { try migrator.migrate(db) }
            #expect(try tables(db) == ["photos"])
            #expect(throws: SchemaError.notAShardStoreIndex(path: foreign)) { try migrator.check(db) }

            let garbage = dir + "/garbage.sqlite"
            _ = FileManager.default.createFile(
                atPath: garbage, contents: Data(repeating: 0x41, count: 4096))
            let notSQLite = try Database(path: garbage, mode: .readWrite)
            #expect(throws: SchemaError.notAShardStoreIndex(path: garbage)) {
                try migrator.migrate(notSQLite)
            }
            let reader = try Database(path: garbage, mode: .readOnly)
            #expect(throws: SchemaError.notAShardStoreIndex(path: garbage)) { try migrator.check(reader) }
            #expect(
                SchemaError.notAShardStoreIndex(path: garbage).description
                    == "\(garbage) is not a ShardStore index (it has no schema_migrations table); "
                    + "pass the index.sqlite that `shardstore ingest` wrote"
            )
        }
    }

    @Test("two connections migrating the same file apply each migration once")
    func concurrentMigrators() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/index.sqlite"
            let one = try Database(path: path, mode: .readWriteCreate)
            let two = try Database(path: path, mode: .readWrite)
            let migrator = Migrator([Self.first, Self.second, Self.third])
            #expect(try Migrator([Self.first]).migrate(one) == [1])
            #expect(try migrator.migrate(two) == [2, 3])
            #expect(try migrator.migrate(one) == [])
            #expect(try db(one, "SELECT count(*) FROM a") == 1)
        }
    }

    private func db(_ db: Database, _ sql: String) throws -> Int64? { try db.scalarInt(sql) }

    @Test("Migration.fileName pads the version to four digits")
    func fileNames() {
        #expect(Migration(version: 1, name: "initial", sql: "").fileName == "0001_initial.sql")
        #expect(Migration(version: 12345, name: "x", sql: "").fileName == "12345_x.sql")
    }

    @Test("migrations out of order are a programmer error")
    func outOfOrderTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = Migrator([Migration(version: 2, name: "b", sql: "")])
        }
    }
}

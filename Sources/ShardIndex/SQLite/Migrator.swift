import CShardSQLite

/// Brings a database's schema up to date with a list of forward-only migrations, and refuses
/// databases it cannot handle.
///
/// Applied migrations are recorded in `schema_migrations(version, name, applied_at)`, and
/// `PRAGMA user_version` mirrors the newest one, so tools without this table's knowledge (Python's
/// `sqlite3`, the `sqlite3` shell) can read the version too.
///
/// ```swift
/// let migrator = Migrator(EmbeddedMigrations.all)
/// let db = try Database(path: path, mode: .readWriteCreate)
/// try migrator.migrate(db)          // writers
///
/// let reader = try Database(path: path, mode: .readOnly)
/// try migrator.check(reader)        // readers: refuse, never write
/// ```
public struct Migrator: Sendable {
    /// The migrations, version 1 first.
    public let migrations: [Migration]

    /// The newest version the migrations know; 0 when there are none.
    public var newestVersion: Int { migrations.last?.version ?? 0 }

    /// Creates a migrator over `migrations`.
    ///
    /// ```swift
    /// let migrator = Migrator([Migration(version: 1, name: "initial", sql: "CREATE TABLE t(x);")])
    /// ```
    ///
    /// - Precondition: the versions are 1, 2, 3, … in this order, with no gap (a programmer error:
    ///   `tools/gen-migrations` checks the same of the files).
    /// - Complexity: O(n) in the number of migrations.
    public init(_ migrations: [Migration]) {
        for (offset, migration) in migrations.enumerated() {
            precondition(
                migration.version == offset + 1,
                "migrations must be numbered 1, 2, 3, … in order; found \(migration.fileName) at position \(offset + 1)"
            )
        }
        self.migrations = migrations
    }

    /// Applies every pending migration, oldest first, each in its own IMMEDIATE transaction
    /// that also records it in `schema_migrations` and sets `PRAGMA user_version`.
    ///
    /// Before anything is written, a database from a newer build, a file that is not an SQLite
    /// database, and a database with tables but no `schema_migrations` are refused. Running it
    /// again applies nothing. Two processes migrating the same file at once are safe: each
    /// migration is checked again inside its transaction.
    ///
    /// ```swift
    /// let newlyApplied = try Migrator(EmbeddedMigrations.all).migrate(db)  // [1, 2] on a new file
    /// ```
    ///
    /// - Returns: the versions applied by this call, in order.
    /// - Throws: `SchemaError.newerSchema` or `.notAShardStoreIndex` (nothing written);
    ///   `SchemaError.migrationFailed` naming the migration's file when one fails (it is rolled
    ///   back, earlier ones stay applied); `SQLiteError` when the database cannot be read or
    ///   locked (`.busy`), or when called inside a transaction.
    /// - Complexity: the pending migrations' SQL, plus a few small queries per migration.
    @discardableResult
    public func migrate(_ db: Database) throws -> [Int] {
        let path = db.path
        try Self.refusingForeignFiles(path) {
            try db.inTransaction(.immediate) {
                let state = try SchemaState(db)
                try validate(state, path: path)
                if !state.hasMigrationsTable {
                    try db.execute(
                        """
                        CREATE TABLE schema_migrations (
                            version    INTEGER PRIMARY KEY,
                            name       TEXT NOT NULL,
                            applied_at TEXT NOT NULL
                        )
                        """
                    )
                }
            }
        }

        var applied: [Int] = []
        for migration in migrations {
            let didApply: Bool
            do {
                didApply = try db.inTransaction(.immediate) { () throws -> Bool in
                    let versions = try appliedVersions(db)
                    if let newest = versions.last, newest > newestVersion {
                        throw SchemaError.newerSchema(path: path, found: newest, known: newestVersion)
                    }
                    if versions.contains(migration.version) { return false }
                    try db.executeDenyingTransactionControl(migration.sql)
                    try db.cachedStatement(
                        """
                        INSERT INTO schema_migrations(version, name, applied_at)
                        VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
                        """
                    ).execute([.integer(Int64(migration.version)), .text(migration.name)])
                    try Self.setUserVersion(migration.version, in: db)
                    return true
                }
            } catch let error as SQLiteError {
                throw SchemaError.migrationFailed(
                    path: path, migration: migration.fileName, underlying: error)
            }
            if didApply { applied.append(migration.version) }
        }

        if try (db.scalarInt("PRAGMA user_version") ?? 0) < newestVersion {
            try db.inTransaction(.immediate) { try Self.setUserVersion(newestVersion, in: db) }
        }
        return applied
    }

    /// Checks, without writing, that this build can read the database: every known migration up
    /// to `oldestReadable` (all of them by default) is applied and none newer than this build
    /// knows is recorded. For read-only opens; readers that accept an older schema must cope with
    /// what the later migrations add being absent.
    ///
    /// ```swift
    /// let db = try Database(path: path, mode: .readOnly)
    /// try Migrator(EmbeddedMigrations.all).check(db)
    /// try Migrator(EmbeddedMigrations.all).check(db, oldestReadable: 1)  // schema 1 reads too
    /// ```
    ///
    /// - Throws: `SchemaError.newerSchema` ("… was written by a newer ShardStore (schema 7; this
    ///   build knows up to 3); upgrade shardstore to read it"), `.outdatedSchema`,
    ///   `.emptyDatabase` (an empty file: nothing to upgrade, it is not an index),
    ///   `.notAShardStoreIndex`; `SQLiteError` when the file cannot be read.
    /// - Complexity: a few small queries.
    public func check(_ db: Database, oldestReadable: Int? = nil) throws {
        let path = db.path
        let state = try Self.refusingForeignFiles(path) { () throws -> SchemaState in
            if db.isInTransaction { return try SchemaState(db) }
            return try db.inTransaction(.deferred) { try SchemaState(db) }
        }
        try validate(state, path: path)
        if !state.hasMigrationsTable, !state.hasOtherObjects, state.userVersion == 0 {
            throw SchemaError.emptyDatabase(path: path)
        }
        let complete = state.completeVersion
        if complete < max(1, min(oldestReadable ?? newestVersion, newestVersion)) {
            throw SchemaError.outdatedSchema(path: path, found: complete, known: newestVersion)
        }
    }

    /// The versions recorded in `schema_migrations`, ascending; `[]` when the table is missing.
    ///
    /// ```swift
    /// try Migrator(EmbeddedMigrations.all).appliedVersions(db)  // [1, 2, 3]
    /// ```
    ///
    /// - Throws: `SQLiteError` when the database cannot be read.
    /// - Complexity: O(n) in the recorded versions.
    public func appliedVersions(_ db: Database) throws -> [Int] {
        guard try SchemaState.hasMigrationsTable(db) else { return [] }
        return try SchemaState.recordedVersions(db)
    }

    // MARK: Helpers

    /// Refuses foreign databases and databases newer than this build.
    private func validate(_ state: SchemaState, path: String) throws(SchemaError) {
        if !state.hasMigrationsTable, state.hasOtherObjects || state.userVersion != 0 {
            throw .notAShardStoreIndex(path: path)
        }
        if state.newestVersion > newestVersion {
            throw .newerSchema(path: path, found: state.newestVersion, known: newestVersion)
        }
    }

    /// Runs `body`, turning "file is not a database" into `SchemaError.notAShardStoreIndex`.
    private static func refusingForeignFiles<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError where error.code == .notADatabase {
            throw SchemaError.notAShardStoreIndex(path: path)
        }
    }

    /// Sets `PRAGMA user_version`, which takes no bound parameter: `version` is an `Int` from the
    /// migration list, so the SQL text holds digits only.
    private static func setUserVersion(_ version: Int, in db: Database) throws(SQLiteError) {
        try db.execute("PRAGMA user_version = \(version)")
    }
}

/// What a database records about its schema.
struct SchemaState {
    /// Whether `schema_migrations` exists.
    var hasMigrationsTable: Bool
    /// Whether any other table, index, view or trigger exists.
    var hasOtherObjects: Bool
    /// `PRAGMA user_version`.
    var userVersion: Int
    /// The versions in `schema_migrations`, ascending.
    var applied: [Int]

    /// The newest version recorded anywhere.
    var newestVersion: Int { max(userVersion, applied.last ?? 0) }

    /// The highest `n` such that versions 1 through `n` are all applied.
    var completeVersion: Int {
        var n = 0
        for version in applied where version == n + 1 { n = version }
        return n
    }

    init(_ db: Database) throws {
        hasMigrationsTable = try Self.hasMigrationsTable(db)
        hasOtherObjects =
            try db.scalarInt(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name <> ?)", .text("schema_migrations"))
            == 1
        userVersion = Int(try db.scalarInt("PRAGMA user_version") ?? 0)
        applied = hasMigrationsTable ? try Self.recordedVersions(db) : []
    }

    /// The versions in `schema_migrations`, which must exist, ascending.
    static func recordedVersions(_ db: Database) throws(SQLiteError) -> [Int] {
        let statement = try db.cachedStatement("SELECT version FROM schema_migrations ORDER BY version")
        defer { statement.reset() }
        var versions: [Int] = []
        while try statement.step() { versions.append(statement.int(at: 0)) }
        return versions
    }

    static func hasMigrationsTable(_ db: Database) throws(SQLiteError) -> Bool {
        try db.scalarInt(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)",
            .text("schema_migrations")
        ) == 1
    }
}

extension Database {
    /// Runs a migration's SQL with an authorizer that refuses BEGIN, COMMIT, ROLLBACK and END,
    /// so a migration can never commit half of itself outside the migrator's transaction.
    func executeDenyingTransactionControl(_ sql: String) throws(SQLiteError) {
        let connection = try connection()
        sqlite3_set_authorizer(
            connection,
            { _, action, _, _, _, _ in action == SQLITE_TRANSACTION ? SQLITE_DENY : SQLITE_OK },
            nil
        )
        defer { sqlite3_set_authorizer(connection, nil, nil) }
        do {
            try execute(sql)
        } catch  where error.code == .auth {
            throw SQLiteError(
                code: error.extendedCode,
                message:
                    "BEGIN, COMMIT, END and ROLLBACK are not allowed in a migration, which runs in its own transaction",
                sql: error.sql,
                path: error.path
            )
        }
    }
}
